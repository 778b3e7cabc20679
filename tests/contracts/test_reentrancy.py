"""Hostile owners: refunds reach them exactly once, re-entry fails, and none can block the oracle."""

import ape
import pytest

from tests.contracts.conftest import FEE, Status


class Mode:
    ACCEPT, REENTER_CANCEL, REENTER_CLAIM, REVERT, BURN_GAS = range(5)


@pytest.fixture
def hostile(project, paid_registry, patient, new_cid):
    owner = project.HostileOwner.deploy(paid_registry, sender=patient)
    owner.register(new_cid(), sender=patient, value=FEE)
    assert paid_registry.getImage(owner.imageId()).owner == owner.address
    return owner


def test_reentering_cancel_on_failure_refund_fails(paid_registry, oracle, hostile):
    hostile.setMode(Mode.REENTER_CANCEL, sender=oracle)
    tx = paid_registry.reportFailure(hostile.imageId(), 1, sender=oracle)
    assert hostile.reentryAttempts() == 1
    assert hostile.reentrySuccesses() == 0
    assert hostile.received() == FEE
    assert hostile.balance == FEE
    assert paid_registry.balance == 0
    assert [e.event_name for e in tx.events] == ["ClassificationFailed", "Refunded"]


def test_reentering_cancel_on_cancel_refund_fails(paid_registry, patient, hostile, chain):
    chain.pending_timestamp = paid_registry.getImage(hostile.imageId()).deadline
    hostile.setMode(Mode.REENTER_CANCEL, sender=patient)
    hostile.cancel(sender=patient)
    assert hostile.reentryAttempts() == 1
    assert hostile.reentrySuccesses() == 0
    assert hostile.received() == FEE
    assert paid_registry.statusOf(hostile.imageId()) == Status.CANCELLED
    assert paid_registry.balance == 0


@pytest.mark.parametrize("mode", [Mode.REVERT, Mode.BURN_GAS])
def test_owner_that_cannot_receive_does_not_block_the_oracle(paid_registry, oracle, hostile, mode):
    hostile.setMode(mode, sender=oracle)
    tx = paid_registry.reportFailure(hostile.imageId(), 2, sender=oracle)
    assert tx.events[-1] == paid_registry.RefundDeferred(imageId=hostile.imageId(), owner=hostile, amount=FEE)
    assert paid_registry.statusOf(hostile.imageId()) == Status.FAILED
    assert paid_registry.refundOwed(hostile) == FEE
    assert paid_registry.balance == FEE
    assert hostile.received() == 0


def test_deferred_refund_is_claimed_once(paid_registry, oracle, patient, hostile):
    hostile.setMode(Mode.REVERT, sender=patient)
    paid_registry.reportFailure(hostile.imageId(), 2, sender=oracle)
    hostile.setMode(Mode.REENTER_CLAIM, sender=patient)
    tx = hostile.claim(sender=patient)
    assert paid_registry.RefundClaimed(owner=hostile, amount=FEE) in tx.events
    assert hostile.reentryAttempts() == 1
    assert hostile.reentrySuccesses() == 0
    assert hostile.received() == FEE
    assert paid_registry.refundOwed(hostile) == 0
    assert paid_registry.balance == 0
    with ape.reverts(paid_registry.NothingToClaim, owner=hostile):
        hostile.claim(sender=patient)


def test_claim_that_cannot_be_received_reverts_and_keeps_the_refund(paid_registry, oracle, patient, hostile):
    hostile.setMode(Mode.REVERT, sender=patient)
    paid_registry.reportFailure(hostile.imageId(), 2, sender=oracle)
    with ape.reverts(paid_registry.TransferFailed, to=hostile, amount=FEE):
        hostile.claim(sender=patient)
    assert paid_registry.refundOwed(hostile) == FEE
