"""Random sequences of register / post / batch / fail / batch fail / cancel / time travel / fee and
failure fee changes per model / withdraw against a model of what the registry must do. After every step:
status only moved forward, every image was refunded at most once, and the contract's balance
equals the fees it holds."""

from dataclasses import dataclass

import ape
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from oracle.chain.registry import Status
from tests.contracts.conftest import FEE, MODEL_A, MODEL_B, TIMEOUT, image_id

TERMINAL = {Status.CLASSIFIED, Status.FAILED, Status.CANCELLED}


@dataclass
class Image:
    owner: object
    fee: int
    failure_fee: int
    registered_at: int
    status: int = Status.PENDING
    refunds: int = 0


def test_registry_state_machine(project, chain, accounts):
    admin, oracle, owners = accounts[0], accounts[1], [accounts[2], accounts[3], accounts[4]]
    counter = iter(range(10**9))

    class RegistryMachine(RuleBasedStateMachine):
        @initialize()
        def deploy(self) -> None:
            self.snapshot = chain.snapshot()
            self.registry = project.ImageRegistry.deploy(admin, TIMEOUT, sender=admin)
            self.registry.grantRole(self.registry.ORACLE_ROLE(), oracle, sender=admin)
            self.registry.registerModel(MODEL_A, "a", "", FEE, 0, sender=admin)
            self.registry.registerModel(MODEL_B, "b", "", 3 * FEE, FEE, sender=admin)
            self.registry.setDefaultModel(MODEL_A, sender=admin)
            self.terms = {MODEL_A: (FEE, 0), MODEL_B: (3 * FEE, FEE)}  # fee, failure fee
            self.images: dict[bytes, Image] = {}
            self.seen: dict[bytes, int] = {}
            self.earned = 0
            self.withdrawn = 0

        def teardown(self) -> None:
            if hasattr(self, "snapshot"):
                chain.restore(self.snapshot)

        def pick(self, data_index: int) -> bytes:
            ids = sorted(self.images)
            return ids[data_index % len(ids)]

        def record_refund(self, image: Image) -> None:
            image.refunds += 1

        @rule(owner=st.sampled_from(range(3)), model=st.sampled_from([b"\x00" * 32, MODEL_A, MODEL_B]))
        def register(self, owner: int, model: bytes) -> None:
            cid = f"bafkreitestimage{next(counter):043d}"
            fee, failure_fee = self.terms[model if any(model) else MODEL_A]
            tx = self.registry.registerImage(cid, model, sender=owners[owner], value=fee)
            self.images[image_id(owners[owner], cid)] = Image(
                owners[owner],
                fee,
                failure_fee,
                chain.provider.get_block(tx.block_number).timestamp,
            )

        @precondition(lambda self: self.images)
        @rule(index=st.integers(min_value=0))
        def post(self, index: int) -> None:
            iid = self.pick(index)
            image = self.images[iid]
            if image.status != Status.PENDING:
                with ape.reverts(self.registry.ImageNotPending, imageId=iid, status=image.status):
                    self.registry.postResult(iid, b"\x01" * 32, sender=oracle)
                return
            self.registry.postResult(iid, b"\x01" * 32, sender=oracle)
            image.status = Status.CLASSIFIED
            self.earned += image.fee

        @precondition(lambda self: self.images)
        @rule(indices=st.lists(st.integers(min_value=0), max_size=6))
        def post_batch(self, indices: list[int]) -> None:
            batch = [self.pick(i) for i in indices]
            expected = 0
            for iid in batch:
                image = self.images[iid]
                if image.status == Status.PENDING:
                    image.status = Status.CLASSIFIED
                    self.earned += image.fee
                    expected += 1
            tx = self.registry.postResults(batch, [b"\x02" * 32] * len(batch), sender=oracle)
            assert len(tx.events) == expected

        @precondition(lambda self: self.images)
        @rule(index=st.integers(min_value=0), reason=st.integers(min_value=1, max_value=10))
        def fail(self, index: int, reason: int) -> None:
            iid = self.pick(index)
            image = self.images[iid]
            if image.status != Status.PENDING:
                with ape.reverts(self.registry.ImageNotPending, imageId=iid, status=image.status):
                    self.registry.reportFailure(iid, reason, sender=oracle)
                return
            before = image.owner.balance
            self.registry.reportFailure(iid, reason, sender=oracle)
            self.failed(image, before)

        def failed(self, image: Image, balance_before: int) -> None:
            assert image.owner.balance == balance_before + image.fee - image.failure_fee
            image.status = Status.FAILED
            self.earned += image.failure_fee
            self.record_refund(image)

        @precondition(lambda self: self.images)
        @rule(indices=st.lists(st.integers(min_value=0), max_size=6))
        def fail_batch(self, indices: list[int]) -> None:
            batch = list(dict.fromkeys(self.pick(i) for i in indices))
            pending = [self.images[iid] for iid in batch if self.images[iid].status == Status.PENDING]
            balances = {image.owner: image.owner.balance for image in pending}
            self.registry.reportFailures(batch, [3] * len(batch), sender=oracle)
            for image in pending:
                balances[image.owner] += image.fee - image.failure_fee
                image.status = Status.FAILED
                self.earned += image.failure_fee
                self.record_refund(image)
            assert {owner: owner.balance for owner in balances} == balances

        @precondition(lambda self: self.images)
        @rule(index=st.integers(min_value=0))
        def cancel(self, index: int) -> None:
            iid = self.pick(index)
            image = self.images[iid]
            deadline = image.registered_at + TIMEOUT
            if image.status != Status.PENDING:
                with ape.reverts(self.registry.ImageNotPending, imageId=iid, status=image.status):
                    self.registry.cancel(iid, sender=image.owner)
                return
            if chain.pending_timestamp < deadline:
                with ape.reverts(self.registry.RequestNotTimedOut, imageId=iid, deadline=deadline):
                    self.registry.cancel(iid, sender=image.owner)
                return
            before = image.owner.balance
            tx = self.registry.cancel(iid, sender=image.owner)
            assert image.owner.balance == before + image.fee - tx.total_fees_paid
            image.status = Status.CANCELLED
            self.record_refund(image)

        @rule(seconds=st.sampled_from([1, 600, TIMEOUT // 2, TIMEOUT, 2 * TIMEOUT]))
        def time_travel(self, seconds: int) -> None:
            chain.pending_timestamp += seconds

        @rule(
            model=st.sampled_from([MODEL_A, MODEL_B]),
            fee=st.sampled_from([0, 1, FEE, 7 * FEE]),
            share=st.sampled_from([0, 1, 2, 5]),
        )
        def set_fee(self, model: bytes, fee: int, share: int) -> None:
            """A failure keeps none, a quarter or half of the fee; or more than it, refused."""
            failure_fee = fee * share // 4 if share < 5 else fee + 1
            if failure_fee > fee:
                with ape.reverts(self.registry.FailureFeeAboveRequestFee):
                    self.registry.setModelFee(model, fee, failure_fee, sender=admin)
                return
            self.registry.setModelFee(model, fee, failure_fee, sender=admin)
            self.terms[model] = (fee, failure_fee)

        @rule(fraction=st.sampled_from([0.0, 0.5, 1.0]))
        def withdraw(self, fraction: float) -> None:
            amount = int((self.earned - self.withdrawn) * fraction)
            self.registry.withdrawFees(admin, amount, sender=admin)
            self.withdrawn += amount

        @invariant()
        def matches_the_model(self) -> None:
            if not hasattr(self, "registry"):
                return
            for iid, image in self.images.items():
                status = self.registry.statusOf(iid)
                previous = self.seen.get(iid, Status.PENDING)
                assert status == previous or (previous == Status.PENDING and status in TERMINAL)
                self.seen[iid] = status
                assert status == image.status
                assert image.refunds <= 1
            for model, terms in self.terms.items():
                assert self.registry.modelFee(model) == terms
            escrow = sum(i.fee for i in self.images.values() if i.status == Status.PENDING)
            assert self.registry.earnedFees() == self.earned - self.withdrawn
            assert self.registry.balance == escrow + self.earned - self.withdrawn

    run_state_machine_as_test(
        RegistryMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
