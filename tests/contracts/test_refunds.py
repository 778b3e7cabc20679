"""reportFailure and cancel: forward-only status, refunds exactly once, deferred refunds."""

import ape
import pytest

from oracle.chain.reasons import FailureReason
from oracle.chain.registry import Status
from tests.contracts.conftest import FEE, MODEL_A, TIMEOUT, image_id


@pytest.fixture
def paid(paid_registry, patient, new_cid):
    cid = new_cid()
    paid_registry.registerImage(cid, MODEL_A, sender=patient, value=FEE)
    return image_id(patient, cid)


def test_report_failure_refunds_the_owner(paid_registry, oracle, patient, paid):
    before = patient.balance
    tx = paid_registry.reportFailure(paid, FailureReason.CONTENT_MISMATCH, sender=oracle)
    assert tx.events == [
        paid_registry.ClassificationFailed(imageId=paid, reason=FailureReason.CONTENT_MISMATCH),
        paid_registry.Refunded(imageId=paid, owner=patient, amount=FEE),
    ]
    assert patient.balance == before + FEE
    assert paid_registry.balance == 0
    assert paid_registry.statusOf(paid) == Status.FAILED


@pytest.mark.parametrize("reason", [FailureReason.CONTENT_UNREACHABLE, FailureReason.MODEL_UNAVAILABLE])
def test_every_reason_in_range_is_accepted(registry, oracle, patient, new_cid, reason):
    cid = new_cid()
    registry.registerImage(cid, MODEL_A, sender=patient)
    tx = registry.reportFailure(image_id(patient, cid), reason, sender=oracle)
    assert tx.events == [registry.ClassificationFailed(imageId=image_id(patient, cid), reason=reason)]


@pytest.mark.parametrize("reason", [0, max(FailureReason) + 1, 255])
def test_reasons_out_of_range_revert(paid_registry, oracle, paid, reason):
    with ape.reverts(paid_registry.InvalidFailureReason, reason=reason):
        paid_registry.reportFailure(paid, reason, sender=oracle)


def test_failure_after_result_reverts_and_refunds_nothing(paid_registry, oracle, paid):
    paid_registry.postResult(paid, b"\x01" * 32, sender=oracle)
    with ape.reverts(paid_registry.ImageNotPending, imageId=paid, status=Status.CLASSIFIED):
        paid_registry.reportFailure(paid, FailureReason.MODEL_ERROR, sender=oracle)
    assert paid_registry.balance == FEE
    assert paid_registry.earnedFees() == FEE


def test_failure_twice_refunds_once(paid_registry, oracle, patient, paid):
    paid_registry.reportFailure(paid, FailureReason.TOO_LARGE, sender=oracle)
    balance = patient.balance
    with ape.reverts(paid_registry.ImageNotPending, imageId=paid, status=Status.FAILED):
        paid_registry.reportFailure(paid, FailureReason.TOO_LARGE, sender=oracle)
    assert patient.balance == balance


def test_failure_of_unknown_image_reverts(paid_registry, oracle):
    with ape.reverts(paid_registry.UnknownImage, imageId=b"\x09" * 32):
        paid_registry.reportFailure(b"\x09" * 32, FailureReason.MODEL_ERROR, sender=oracle)


def test_cancel_before_timeout_reverts(paid_registry, patient, paid):
    deadline = paid_registry.getImage(paid).deadline
    with ape.reverts(paid_registry.RequestNotTimedOut, imageId=paid, deadline=deadline):
        paid_registry.cancel(paid, sender=patient)


def test_cancel_after_timeout_refunds_once(paid_registry, patient, paid, chain):
    chain.pending_timestamp = paid_registry.getImage(paid).deadline
    before = patient.balance
    tx = paid_registry.cancel(paid, sender=patient)
    assert tx.events == [
        paid_registry.RequestCancelled(imageId=paid, owner=patient),
        paid_registry.Refunded(imageId=paid, owner=patient, amount=FEE),
    ]
    assert patient.balance == before + FEE - tx.total_fees_paid
    assert paid_registry.statusOf(paid) == Status.CANCELLED
    assert paid_registry.balance == 0
    with ape.reverts(paid_registry.ImageNotPending, imageId=paid, status=Status.CANCELLED):
        paid_registry.cancel(paid, sender=patient)


def test_only_the_owner_cancels(paid_registry, other, paid, chain):
    chain.pending_timestamp = paid_registry.getImage(paid).deadline
    with ape.reverts(paid_registry.NotImageOwner, imageId=paid, caller=other):
        paid_registry.cancel(paid, sender=other)


def test_cancelled_request_cannot_be_answered(paid_registry, oracle, patient, paid, chain):
    chain.pending_timestamp = paid_registry.getImage(paid).deadline
    paid_registry.cancel(paid, sender=patient)
    with ape.reverts(paid_registry.ImageNotPending, imageId=paid, status=Status.CANCELLED):
        paid_registry.postResult(paid, b"\x01" * 32, sender=oracle)
    assert paid_registry.postResults.call([paid], [b"\x01" * 32], sender=oracle) == 0


def test_free_request_cancels_without_refund_event(registry, patient, new_cid, chain):
    cid = new_cid()
    registry.registerImage(cid, MODEL_A, sender=patient)
    chain.pending_timestamp += TIMEOUT + 1
    tx = registry.cancel(image_id(patient, cid), sender=patient)
    assert tx.events == [registry.RequestCancelled(imageId=image_id(patient, cid), owner=patient)]


def test_timeout_change_applies_to_pending_requests(paid_registry, admin, patient, paid, chain):
    registered = paid_registry.getImage(paid).registeredAt
    paid_registry.setRequestTimeout(60, sender=admin)
    assert paid_registry.getImage(paid).deadline == registered + 60
    chain.pending_timestamp = registered + 60
    paid_registry.cancel(paid, sender=patient)
    assert paid_registry.statusOf(paid) == Status.CANCELLED


def test_the_oracles_failure_reasons_are_the_contracts(registry, oracle, patient, new_cid):
    for reason in FailureReason:
        cid = new_cid()
        registry.registerImage(cid, MODEL_A, sender=patient)
        registry.reportFailure(image_id(patient, cid), int(reason), sender=oracle)
    cid = new_cid()
    registry.registerImage(cid, MODEL_A, sender=patient)
    beyond = max(FailureReason) + 1
    with ape.reverts(registry.InvalidFailureReason, reason=beyond):
        registry.reportFailure(image_id(patient, cid), beyond, sender=oracle)
