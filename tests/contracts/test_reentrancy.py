"""Hostile owners: refunds reach them exactly once, re-entry is refused, and none can block or
overcharge the oracle."""

import ape
import pytest
from eth_utils.crypto import keccak

from oracle.chain.registry import Status
from tests.contracts.conftest import FEE

CANCEL = keccak(b"cancel(bytes32)")[:4]
CLAIM_REFUND = keccak(b"claimRefund(address)")[:4]


class Mode:
    ACCEPT, REENTER_CANCEL, REENTER_CLAIM, REVERT, BURN_GAS = range(5)


@pytest.fixture
def hostile(project, paid_registry, patient, new_cid):
    """Owns two paid images: [0] is the one refunded, [1] the one a re-entry would cancel."""
    owner = project.HostileOwner.deploy(paid_registry, sender=patient)
    for _ in range(2):
        owner.register(new_cid(), sender=patient, value=FEE)
    assert paid_registry.getImage(owner.imageIds(0)).owner == owner.address
    return owner


def reentries(tx, hostile):
    return [(log.selector, log.succeeded) for log in tx.events if log.event_name == "ReentryAttempted"]


def test_pushed_refund_reaches_an_accepting_contract(paid_registry, oracle, hostile):
    tx = paid_registry.reportFailure(hostile.imageIds(0), 1, sender=oracle)
    assert tx.events[-1] == paid_registry.Refunded(imageId=hostile.imageIds(0), owner=hostile, amount=FEE)
    assert hostile.balance == FEE
    assert paid_registry.balance == FEE


def test_reentry_during_a_pushed_refund_fails_and_the_refund_arrives(
    paid_registry, oracle, patient, hostile, chain
):
    chain.pending_timestamp = paid_registry.getImage(hostile.imageIds(1)).deadline
    hostile.setMode(Mode.REENTER_CANCEL, sender=patient)
    tx = paid_registry.reportFailure(hostile.imageIds(0), 1, sender=oracle)
    assert reentries(tx, hostile) == [(CANCEL, False)]
    assert tx.events[-1] == paid_registry.Refunded(imageId=hostile.imageIds(0), owner=hostile, amount=FEE)
    assert paid_registry.statusOf(hostile.imageIds(1)) == Status.PENDING
    assert hostile.balance == FEE


def test_reentry_during_a_claim_is_refused_by_the_guard(paid_registry, oracle, patient, hostile, chain):
    """claimRefund sends with all remaining gas, so only the guard stops a re-entrant cancel of
    the owner's other, timed-out request (which would succeed outside the callback)."""
    first, second = hostile.imageIds(0), hostile.imageIds(1)
    hostile.setMode(Mode.REVERT, sender=patient)
    paid_registry.reportFailure(first, 2, sender=oracle)
    chain.pending_timestamp = paid_registry.getImage(second).deadline
    hostile.setMode(Mode.REENTER_CANCEL, sender=patient)

    tx = hostile.claim(hostile, sender=patient)
    assert reentries(tx, hostile) == [(CANCEL, False)]
    assert paid_registry.statusOf(second) == Status.PENDING
    assert hostile.balance == FEE
    assert paid_registry.refundOwed(hostile) == 0

    hostile.setMode(Mode.ACCEPT, sender=patient)
    hostile.cancel(1, sender=patient)
    assert paid_registry.statusOf(second) == Status.CANCELLED
    assert hostile.balance == 2 * FEE
    assert paid_registry.balance == 0


def test_reentering_claim_pays_once(paid_registry, oracle, patient, hostile):
    hostile.setMode(Mode.REVERT, sender=patient)
    paid_registry.reportFailure(hostile.imageIds(0), 2, sender=oracle)
    hostile.setMode(Mode.REENTER_CLAIM, sender=patient)
    tx = hostile.claim(hostile, sender=patient)
    assert paid_registry.RefundClaimed(owner=hostile, to=hostile, amount=FEE) in tx.events
    assert reentries(tx, hostile) == [(CLAIM_REFUND, False)]
    assert hostile.balance == FEE
    with ape.reverts(paid_registry.NothingToClaim, owner=hostile):
        hostile.claim(hostile, sender=patient)


@pytest.mark.parametrize("mode", [Mode.REVERT, Mode.BURN_GAS])
def test_owner_that_cannot_take_a_push_does_not_block_the_oracle(paid_registry, oracle, hostile, mode):
    """A pushed refund carries REFUND_GAS; whatever the owner does with it, the oracle's call
    succeeds, costs a bounded amount, and the refund is kept for the owner."""
    hostile.setMode(mode, sender=oracle)
    tx = paid_registry.reportFailure(hostile.imageIds(0), 2, sender=oracle)
    assert tx.events[-1] == paid_registry.RefundDeferred(
        imageId=hostile.imageIds(0), owner=hostile, amount=FEE
    )
    assert paid_registry.statusOf(hostile.imageIds(0)) == Status.FAILED
    assert paid_registry.refundOwed(hostile) == FEE
    assert hostile.balance == 0
    assert tx.gas_used < paid_registry.REFUND_GAS_FLOOR() + 60_000


def test_kept_refunds_add_up_and_go_to_another_address(paid_registry, oracle, patient, other, hostile, chain):
    hostile.setMode(Mode.REVERT, sender=patient)
    paid_registry.reportFailure(hostile.imageIds(0), 2, sender=oracle)
    chain.pending_timestamp = paid_registry.getImage(hostile.imageIds(1)).deadline
    tx = hostile.cancel(1, sender=patient)
    assert tx.events[-1] == paid_registry.RefundDeferred(
        imageId=hostile.imageIds(1), owner=hostile, amount=FEE
    )
    assert paid_registry.refundOwed(hostile) == 2 * FEE

    before = other.balance
    hostile.claim(other, sender=patient)
    assert other.balance == before + 2 * FEE
    assert paid_registry.balance == 0
    assert paid_registry.refundOwed(hostile) == 0


def test_claim_to_zero_or_unreceiving_address_keeps_the_refund(paid_registry, oracle, patient, hostile):
    hostile.setMode(Mode.REVERT, sender=patient)
    paid_registry.reportFailure(hostile.imageIds(0), 2, sender=oracle)
    with ape.reverts(paid_registry.ZeroAddress):
        hostile.claim("0x0000000000000000000000000000000000000000", sender=patient)
    with ape.reverts(paid_registry.TransferFailed, to=hostile, amount=FEE):
        hostile.claim(hostile, sender=patient)
    assert paid_registry.refundOwed(hostile) == FEE


def test_withdraw_cannot_take_kept_refunds(paid_registry, admin, oracle, patient, hostile):
    hostile.setMode(Mode.REVERT, sender=patient)
    paid_registry.reportFailure(hostile.imageIds(0), 2, sender=oracle)
    with ape.reverts(paid_registry.InsufficientEarnedFees, requested=1, available=0):
        paid_registry.withdrawFees(admin, 1, sender=admin)


def test_a_refund_needs_gas_for_the_push_and_the_fallback(paid_registry, oracle, hostile):
    floor = paid_registry.REFUND_GAS_FLOOR()
    with ape.reverts(paid_registry.InsufficientGasForRefund):
        paid_registry.reportFailure(hostile.imageIds(0), 2, sender=oracle, gas_limit=floor)
    assert paid_registry.statusOf(hostile.imageIds(0)) == Status.PENDING
