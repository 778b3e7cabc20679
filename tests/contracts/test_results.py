"""postResult and postResults: commitments, skipping in batches, earned fees."""

import ape
import pytest

from oracle.chain.registry import Status
from tests.contracts.conftest import FEE, MODEL_A, MODEL_B, image_id

HASH = b"\x11" * 32


@pytest.fixture
def pending(registry, patient, new_cid):
    def make(count: int = 1, model: bytes = MODEL_A) -> list[bytes]:
        ids = []
        for _ in range(count):
            cid = new_cid()
            registry.registerImage(cid, model, sender=patient)
            ids.append(image_id(patient, cid))
        return ids

    return make


def test_post_result(registry, oracle, pending, chain):
    (iid,) = pending(model=MODEL_B)
    tx = registry.postResult(iid, HASH, sender=oracle)
    assert tx.events == [registry.ResultPosted(imageId=iid, modelId=MODEL_B, resultHash=HASH)]
    record = registry.getImage(iid)
    assert record.status == Status.CLASSIFIED
    assert record.resultHash == HASH


def test_post_twice_reverts(registry, oracle, pending):
    (iid,) = pending()
    registry.postResult(iid, HASH, sender=oracle)
    with ape.reverts(registry.ImageNotPending, imageId=iid, status=Status.CLASSIFIED):
        registry.postResult(iid, b"\x22" * 32, sender=oracle)
    assert registry.getImage(iid).resultHash == HASH


def test_post_unknown_image_reverts(registry, oracle):
    with ape.reverts(registry.UnknownImage, imageId=b"\x05" * 32):
        registry.postResult(b"\x05" * 32, HASH, sender=oracle)


def test_post_zero_hash_reverts(registry, oracle, pending):
    (iid,) = pending()
    with ape.reverts(registry.EmptyResultHash, imageId=iid):
        registry.postResult(iid, b"\x00" * 32, sender=oracle)


def test_pending_request_of_a_retired_model_can_still_be_answered(registry, admin, oracle, pending):
    (iid,) = pending(model=MODEL_B)
    registry.retireModel(MODEL_B, sender=admin)
    registry.postResult(iid, HASH, sender=oracle)
    assert registry.statusOf(iid) == Status.CLASSIFIED


def test_batch_posts_all_pending(registry, oracle, pending):
    ids = pending(3)
    hashes = [bytes([i + 1]) * 32 for i in range(3)]
    assert registry.postResults.call(ids, hashes, sender=oracle) == 3
    tx = registry.postResults(ids, hashes, sender=oracle)
    assert tx.events == [
        registry.ResultPosted(imageId=i, modelId=MODEL_A, resultHash=h)
        for i, h in zip(ids, hashes, strict=True)
    ]
    for iid, expected in zip(ids, hashes, strict=True):
        assert registry.getImage(iid).resultHash == expected


def test_batch_skips_what_is_no_longer_pending(registry, oracle, pending):
    first, second, third = pending(3)
    registry.postResult(second, HASH, sender=oracle)
    registry.reportFailure(third, 1, sender=oracle)
    unknown = b"\x07" * 32
    batch, hashes = [first, second, third, unknown], [b"\x33" * 32] * 4
    assert registry.postResults.call(batch, hashes, sender=oracle) == 1
    tx = registry.postResults(batch, hashes, sender=oracle)
    assert [log.imageId for log in tx.events] == [first]
    assert registry.getImage(second).resultHash == HASH
    assert registry.statusOf(third) == Status.FAILED
    assert registry.statusOf(unknown) == Status.NONE


def test_batch_with_a_duplicate_posts_it_once(registry, oracle, pending):
    (iid,) = pending()
    tx = registry.postResults([iid, iid], [HASH, b"\x44" * 32], sender=oracle)
    assert len(tx.events) == 1
    assert registry.getImage(iid).resultHash == HASH


def test_batch_length_mismatch_reverts(registry, oracle, pending):
    ids = pending(2)
    with ape.reverts(registry.LengthMismatch, imageIds=2, resultHashes=1):
        registry.postResults(ids, [HASH], sender=oracle)


def test_batch_zero_hash_reverts_the_whole_batch(registry, oracle, pending):
    first, second = pending(2)
    with ape.reverts(registry.EmptyResultHash, imageId=second):
        registry.postResults([first, second], [HASH, b"\x00" * 32], sender=oracle)
    assert registry.statusOf(first) == Status.PENDING


def test_empty_batch_posts_nothing(registry, oracle):
    tx = registry.postResults([], [], sender=oracle)
    assert tx.events == []


def test_posting_earns_the_fee_and_admin_withdraws_it(paid_registry, admin, oracle, patient, other, new_cid):
    ids = []
    for _ in range(3):
        cid = new_cid()
        paid_registry.registerImage(cid, MODEL_A, sender=patient, value=FEE)
        ids.append(image_id(patient, cid))
    paid_registry.postResult(ids[0], HASH, sender=oracle)
    assert paid_registry.earnedFees() == FEE
    paid_registry.postResults(ids[1:], [HASH, HASH], sender=oracle)
    assert paid_registry.earnedFees() == 3 * FEE

    before = other.balance
    tx = paid_registry.withdrawFees(other, 2 * FEE, sender=admin)
    assert tx.events == [paid_registry.FeesWithdrawn(to=other, amount=2 * FEE)]
    assert other.balance == before + 2 * FEE
    assert paid_registry.earnedFees() == FEE
    assert paid_registry.balance == FEE
    with ape.reverts(paid_registry.InsufficientEarnedFees, requested=2 * FEE, available=FEE):
        paid_registry.withdrawFees(other, 2 * FEE, sender=admin)


def test_withdraw_never_touches_escrow(paid_registry, admin, patient, new_cid):
    paid_registry.registerImage(new_cid(), MODEL_A, sender=patient, value=FEE)
    with ape.reverts(paid_registry.InsufficientEarnedFees, requested=1, available=0):
        paid_registry.withdrawFees(admin, 1, sender=admin)


def test_withdraw_to_zero_address_reverts(paid_registry, admin):
    with ape.reverts(paid_registry.ZeroAddress):
        paid_registry.withdrawFees("0x0000000000000000000000000000000000000000", 0, sender=admin)
