"""The failure fee: what a failed request keeps of its model's fee (garbage costs its sender), set
per model and fee epoch so a pending request keeps the terms it registered under; and failures
reported in batches."""

import ape
import pytest

from oracle.chain.reasons import FailureReason
from oracle.chain.registry import Status
from tests.contracts.conftest import FEE, MODEL_A, MODEL_B, image_id

KEPT = FEE // 4


def register(registry, patient, cid: str, value: int) -> bytes:
    registry.registerImage(cid, MODEL_A, sender=patient, value=value)
    return image_id(patient, cid)


def test_a_failure_keeps_the_failure_fee_and_refunds_the_rest(paid_registry, admin, oracle, patient, new_cid):
    tx = paid_registry.setModelFee(MODEL_A, FEE, KEPT, sender=admin)
    assert tx.events == [paid_registry.ModelFeeChanged(modelId=MODEL_A, fee=FEE, failureFee=KEPT)]
    assert paid_registry.modelFee(MODEL_A) == (FEE, KEPT)
    iid = register(paid_registry, patient, new_cid(), FEE)
    earned, balance = paid_registry.earnedFees(), patient.balance
    tx = paid_registry.reportFailure(iid, FailureReason.NOT_DECRYPTABLE, sender=oracle)
    assert paid_registry.Refunded(imageId=iid, owner=patient, amount=FEE - KEPT) in tx.events
    assert patient.balance == balance + FEE - KEPT
    assert paid_registry.earnedFees() == earned + KEPT


def test_a_pending_request_keeps_the_terms_it_registered_under(
    paid_registry, admin, oracle, patient, new_cid
):
    iid = register(paid_registry, patient, new_cid(), FEE)  # failure fee 0 at registration
    paid_registry.setModelFee(MODEL_A, FEE, FEE, sender=admin)
    later = register(paid_registry, patient, new_cid(), FEE)
    paid_registry.setModelFee(MODEL_A, 2 * FEE, 0, sender=admin)  # a third epoch changes neither
    balance = patient.balance
    paid_registry.reportFailures([iid, later], [2, 2], sender=oracle)
    assert patient.balance == balance + FEE  # the first refunded whole, the second kept whole
    assert paid_registry.getImage(later).feePaid == FEE


def test_each_model_keeps_its_own_failure_fee(paid_registry, admin, oracle, patient, new_cid):
    paid_registry.setModelFee(MODEL_A, FEE, KEPT, sender=admin)
    paid_registry.setModelFee(MODEL_B, 4 * FEE, 2 * KEPT, sender=admin)
    a = register(paid_registry, patient, new_cid(), FEE)
    cid = new_cid()
    paid_registry.registerImage(cid, MODEL_B, sender=patient, value=4 * FEE)
    b = image_id(patient, cid)
    earned, balance = paid_registry.earnedFees(), patient.balance
    tx = paid_registry.reportFailures([a, b], [3, 3], sender=oracle)
    refunds = [(e.imageId, e.amount) for e in tx.events if e.event_name == "Refunded"]
    assert refunds == [(a, FEE - KEPT), (b, 4 * FEE - 2 * KEPT)]
    assert patient.balance == balance + 5 * FEE - 3 * KEPT
    assert paid_registry.earnedFees() == earned + 3 * KEPT


def test_the_failure_fee_never_exceeds_the_request_fee(paid_registry, admin, other):
    with ape.reverts(paid_registry.FailureFeeAboveRequestFee, failureFee=FEE + 1, requestFee=FEE):
        paid_registry.setModelFee(MODEL_A, FEE, FEE + 1, sender=admin)
    assert paid_registry.modelFee(MODEL_A) == (FEE, 0)
    with ape.reverts(
        paid_registry.AccessControlUnauthorizedAccount,
        account=other,
        neededRole=paid_registry.DEFAULT_ADMIN_ROLE(),
    ):
        paid_registry.setModelFee(MODEL_A, FEE, 0, sender=other)


def test_a_free_model_keeps_no_failure_fee(registry, admin, oracle, patient, new_cid):
    with ape.reverts(registry.FailureFeeAboveRequestFee):
        registry.setModelFee(MODEL_A, 0, 1, sender=admin)
    iid = register(registry, patient, new_cid(), 0)
    tx = registry.reportFailure(iid, FailureReason.NOT_TISSUE, sender=oracle)
    assert tx.events == [registry.ClassificationFailed(imageId=iid, reason=FailureReason.NOT_TISSUE)]


def test_a_cancellation_after_the_timeout_refunds_the_whole_fee(
    paid_registry, admin, patient, new_cid, chain
):
    paid_registry.setModelFee(MODEL_A, FEE, KEPT, sender=admin)
    iid = register(paid_registry, patient, new_cid(), FEE)
    chain.pending_timestamp += 3600
    tx = paid_registry.cancel(iid, sender=patient)
    assert paid_registry.Refunded(imageId=iid, owner=patient, amount=FEE) in tx.events


def test_failures_are_reported_in_batches_skipping_what_is_settled(
    paid_registry, admin, oracle, patient, new_cid
):
    paid_registry.setModelFee(MODEL_A, FEE, KEPT, sender=admin)
    ids = [register(paid_registry, patient, new_cid(), FEE) for _ in range(3)]
    paid_registry.postResult(ids[1], b"\x01" * 32, sender=oracle)
    assert paid_registry.reportFailures.call(ids, [1, 2, 3], sender=oracle) == 2
    earned = paid_registry.earnedFees()
    tx = paid_registry.reportFailures(ids, [1, 2, 3], sender=oracle)
    failed = [e for e in tx.events if e.event_name == "ClassificationFailed"]
    assert [(e.imageId, e.reason) for e in failed] == [(ids[0], 1), (ids[2], 3)]
    assert [paid_registry.statusOf(i) for i in ids] == [Status.FAILED, Status.CLASSIFIED, Status.FAILED]
    assert paid_registry.earnedFees() == earned + 2 * KEPT


@pytest.mark.parametrize(("reasons", "error"), [([1, 0], "InvalidFailureReason"), ([1], "LengthMismatch")])
def test_a_malformed_batch_reverts_whole(registry, oracle, patient, new_cid, reasons, error):
    ids = [register(registry, patient, new_cid(), 0) for _ in range(2)]
    with ape.reverts(getattr(registry, error)):
        registry.reportFailures(ids, reasons, sender=oracle)
    assert [registry.statusOf(i) for i in ids] == [Status.PENDING, Status.PENDING]


def test_only_oracles_report_failures_in_batches(registry, patient, new_cid):
    iid = register(registry, patient, new_cid(), 0)
    with ape.reverts(
        registry.AccessControlUnauthorizedAccount, account=patient, neededRole=registry.ORACLE_ROLE()
    ):
        registry.reportFailures([iid], [1], sender=patient)
