"""Reorgs against the oracle's own work, in a fixed order: the daemon's stages driven one step at
a time on real parts (anvil, the local IPFS node, a trained checkpoint, the job store), so that
each interleaving below happens every run instead of once in a while. Each runs in both modes:
embedded (one oracle, SQLite) and distributed (a coordinator listening and submitting, a worker
fetching and classifying, on PostgreSQL; the coordinator collects what the worker wrote as its
`Collect` loop does).

The invariant under test: a job the oracle marks confirmed stores the document whose hash the
chain holds, for the registration the chain holds, and that result is posted once."""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import update

from oracle.chain.errors import ChainError
from oracle.chain.registry import Registry, Status, hex32
from oracle.chain.submitter import Submitter
from oracle.daemon.app import assemble
from oracle.daemon.node import Oracle
from oracle.daemon.ports import WorkQueue
from oracle.document import verify
from oracle.settings import Settings
from oracle.store.db import Database
from oracle.store.models import Job
from tests.oracle.daemon_support import Mode, Stack, envelope, register, rpc, send_registration, upload
from tests.stores import job_rows
from tests.support import png


@dataclass
class Steps:
    """The oracle of one mode, as the tests drive it: `lead` listens and submits, `work` fetches
    and classifies (the same oracle when embedded)."""

    settings: Settings
    lead: Oracle
    work: Oracle

    async def job(self, image_id: str) -> dict[str, Any]:
        return (await job_rows(self.settings.database))[image_id]


@contextlib.asynccontextmanager
async def drive(stack: Stack, mode: Mode) -> AsyncIterator[Steps]:
    settings = mode.settings(stack.settings)
    if mode.stores is None:
        async with assemble(settings) as oracle:
            yield Steps(settings, oracle, oracle)
        return
    async with assemble(settings, "coordinator") as lead, assemble(settings, "worker") as work:
        yield Steps(settings, lead, work)


class HeldReceipt(Submitter):
    """Holds the first receipt the oracle waits for until the test releases it; the test
    reorganises the chain meanwhile, as a slow RPC or a busy event loop can let happen."""

    def __init__(self, registry: Registry, account: LocalAccount) -> None:
        super().__init__(registry, account, receipt_timeout=10)
        self.waiting, self.release = asyncio.Event(), asyncio.Event()
        self.tx_hash: str | None = None

    async def _receipt(self, tx_hash: str) -> Any:
        if self.tx_hash is None:
            self.tx_hash = tx_hash
            self.waiting.set()
            await self.release.wait()
        return await super()._receipt(tx_hash)


class ReadReceipt(HeldReceipt):
    """Reads the first receipt, then holds it: the chain may reorganise between that read and
    the write that records it."""

    async def _receipt(self, tx_hash: str) -> Any:
        if self.tx_hash is not None:
            return await Submitter._receipt(self, tx_hash)
        self.tx_hash = tx_hash
        receipt = await Submitter._receipt(self, tx_hash)
        self.waiting.set()
        await self.release.wait()
        return receipt


def hold_first_receipt(steps: Steps, kind: type[HeldReceipt] = HeldReceipt) -> HeldReceipt:
    oracle = steps.lead
    sender = oracle.submit.sender
    assert isinstance(sender, Submitter)
    held = kind(sender.registry, sender.account)
    oracle.submit.sender = held
    return held


async def drain(queue: "asyncio.Queue[Any] | WorkQueue[Any]") -> list[Any]:
    """Everything waiting in `queue`; in these step-by-step runs nothing is put off till later."""
    return [await queue.get() for _ in range(queue.qsize())]


async def ready(steps: Steps) -> None:
    """One turn of the listener, then the fetch workers, then the classifier, then (distributed)
    the coordinator's collect: what the daemon does for new registrations, without its
    concurrency."""
    lead, work = steps.lead, steps.work
    await lead.listener.poll_once()
    for image_id in await drain(lead.lanes.fetch):
        await work.fetch.fetch(image_id)
    batch = await drain(work.lanes.classify)
    if batch:
        await work.classify.classify_batch(batch)
        await work.lanes.budget.release(sum(decoded.nbytes for decoded in batch))
    if lead is not work:
        for image_id in await lead.core.jobs.ready(100):
            lead.lanes.submit.put(image_id)


async def submit(steps: Steps) -> None:
    await steps.lead.submit.submit(await drain(steps.lead.lanes.submit))


async def reorganise(stack: Stack, snapshot: str) -> None:
    """Back to `snapshot`, then one new block: a registration made again lands in another block.
    (Without it, the same account registering the same CID in the same second rebuilds the
    erased block byte for byte: same hash, so there is no reorg to see.)"""
    assert await rpc(stack, "evm_revert", snapshot)
    await rpc(stack, "evm_mine")


async def edit_document(settings: Settings, image_id: str, document: dict[str, Any]) -> None:
    """A stored document changed behind the daemon's back (a bug, a hand edit)."""
    db = Database(settings.database)
    try:
        async with db.transaction() as session:
            await session.execute(update(Job).where(Job.image_id == image_id).values(document=document))
    finally:
        await db.close()


def invariant_violations(steps: Steps) -> float | None:
    return steps.lead.metrics.registry.get_sample_value("histochain_invariant_violations_total")


async def settled_once(stack: Stack, steps: Steps, image_id: str) -> dict[str, Any]:
    """Asserts the invariant for `image_id` and returns its stored document."""
    contract = stack.registry.contract
    posted = await contract.events.ResultPosted.get_logs(from_block=stack.deployment.block)
    assert Counter(hex32(e["args"]["imageId"]) for e in posted)[image_id] == 1
    (registered,) = [
        e
        for e in await contract.events.ImageRegistered.get_logs(from_block=stack.deployment.block)
        if hex32(e["args"]["imageId"]) == image_id
    ]
    row = await steps.job(image_id)
    assert row["state"] == "confirmed"
    assert row["block_hash"] == hex32(registered["blockHash"])
    on_chain = (await contract.functions.getImage(bytes.fromhex(image_id[2:])).call())[3]
    assert verify(row["document"], bytes(on_chain))
    assert row["result_hash"] == hex32(on_chain)
    return row["document"]  # type: ignore[no-any-return]


async def test_a_receipt_lost_to_a_reorg_never_confirms_the_next_attempts_document(
    stack: Stack, mode: Mode
) -> None:
    """The CI failure, in order: the result is posted, the reorg erases it before its receipt is
    read, the same owner registers the same image again, the oracle classifies it anew; then
    the first submission's wait ends. It must not be sent again as it was (its hash would land
    on the new registration) nor mark the new attempt confirmed."""
    image = png(np.random.default_rng(23), malignant=True)
    async with drive(stack, mode) as oracle:
        held = hold_first_receipt(oracle)
        snapshot = await rpc(stack, "evm_snapshot")
        cid = await upload(stack, await envelope(stack, image, 2))
        first = await send_registration(stack, cid, 2)
        await ready(oracle)
        sending = asyncio.create_task(submit(oracle))
        await held.waiting.wait()
        assert held.tx_hash is not None
        await stack.w3.eth.wait_for_transaction_receipt(held.tx_hash)  # type: ignore[arg-type]
        await reorganise(stack, snapshot)
        again = await send_registration(stack, cid, 2)
        assert again == first
        await ready(oracle)
        assert (await oracle.job(again))["state"] == "classified"
        held.release.set()
        (first_submission,) = await asyncio.gather(sending, return_exceptions=True)
        await submit(oracle)

        document = await settled_once(stack, oracle, again)
        assert document["registration_block"] == (await oracle.job(again))["block_number"]
        assert isinstance(first_submission, ChainError), first_submission
        assert "dropped" in str(first_submission)
        assert invariant_violations(oracle) == 0


@pytest.mark.parametrize(
    "lands", ["before the new attempt is fetched", "after the new attempt is classified"]
)
async def test_a_submission_that_outlives_a_reorg_leaves_its_document_in_charge(
    stack: Stack, mode: Mode, lands: str
) -> None:
    """A transaction a reorg returned to the mempool is mined in the new chain after the same
    owner registered the image again: the chain then holds the first attempt's hash, and the
    oracle's record must hold the first attempt's document, whatever it was doing meanwhile."""
    image = png(np.random.default_rng(29 if lands.startswith("before") else 31), malignant=False)
    async with drive(stack, mode) as oracle:
        held = hold_first_receipt(oracle)
        snapshot = await rpc(stack, "evm_snapshot")
        cid = await upload(stack, await envelope(stack, image, 3))
        first = await send_registration(stack, cid, 3)
        await ready(oracle)
        first_document = (await oracle.job(first))["document"]
        sending = asyncio.create_task(submit(oracle))
        await held.waiting.wait()
        assert held.tx_hash is not None
        raw = await rpc(stack, "eth_getRawTransactionByHash", held.tx_hash)
        await stack.w3.eth.wait_for_transaction_receipt(held.tx_hash)  # type: ignore[arg-type]
        await reorganise(stack, snapshot)
        again = await send_registration(stack, cid, 3)

        async def old_submission_lands() -> None:
            await stack.w3.eth.wait_for_transaction_receipt(await stack.w3.eth.send_raw_transaction(raw))
            assert await stack.registry.status(again) == Status.CLASSIFIED

        if lands.startswith("before"):
            await old_submission_lands()
            await ready(oracle)
        else:
            await ready(oracle)
            assert (await oracle.job(again))["state"] == "classified"
            await old_submission_lands()
        held.release.set()
        await sending
        await submit(oracle)

        assert await settled_once(stack, oracle, again) == first_document
        assert invariant_violations(oracle) == 0


async def test_a_result_whose_transaction_a_reorg_erased_is_sent_again_unchanged(
    stack: Stack, mode: Mode
) -> None:
    """The registration stands, only the block settling it is gone: the job leaves `confirmed`,
    and the same document is posted again (so any copy of the old transaction agrees with it)."""
    image = png(np.random.default_rng(37), malignant=True)
    async with drive(stack, mode) as oracle:
        image_id = await register(stack, image, 4)
        await ready(oracle)
        snapshot = await rpc(stack, "evm_snapshot")
        await submit(oracle)
        await oracle.lead.listener.poll_once()  # the listener sees the head the result was mined in
        posted = await oracle.job(image_id)
        assert posted["state"] == "confirmed"
        assert await rpc(stack, "evm_revert", snapshot)

        await oracle.lead.listener.poll_once()
        assert (await oracle.job(image_id))["state"] == "submitted"
        assert await stack.registry.status(image_id) == Status.PENDING
        await submit(oracle)

        assert await settled_once(stack, oracle, image_id) == posted["document"]
        assert invariant_violations(oracle) == 0


async def test_a_settlement_erased_above_the_last_head_seen_is_sent_again(stack: Stack, mode: Mode) -> None:
    """The result lands in a block the listener never saw as its head, and a reorg replaces that
    block before the next poll: no hash the listener kept changes, yet the job must leave
    `confirmed` and its document go out again."""
    image = png(np.random.default_rng(43), malignant=False)
    async with drive(stack, mode) as oracle:
        image_id = await register(stack, image, 4)
        await ready(oracle)  # the listener records the head, below the block the result will land in
        snapshot = await rpc(stack, "evm_snapshot")
        await submit(oracle)
        posted = await oracle.job(image_id)
        assert posted["state"] == "confirmed"
        await reorganise(stack, snapshot)
        assert await stack.registry.status(image_id) == Status.PENDING

        await oracle.lead.listener.poll_once()
        assert (await oracle.job(image_id))["state"] == "submitted"
        await submit(oracle)

        assert await settled_once(stack, oracle, image_id) == posted["document"]
        assert invariant_violations(oracle) == 0


async def test_a_receipt_read_before_a_reorg_and_recorded_after_it_is_sent_again(
    stack: Stack, mode: Mode
) -> None:
    """The receipt is read, a reorg erases its block, the listener records a head of the new
    chain at that height or above; only then is the receipt written down. The listener has no
    reason to look back, so the write itself must notice its transaction is gone."""
    image = png(np.random.default_rng(47), malignant=True)
    async with drive(stack, mode) as oracle:
        held = hold_first_receipt(oracle, ReadReceipt)
        image_id = await register(stack, image, 5)
        await ready(oracle)
        snapshot = await rpc(stack, "evm_snapshot")
        sending = asyncio.create_task(submit(oracle))
        await held.waiting.wait()
        await reorganise(stack, snapshot)
        for _ in range(3):
            await rpc(stack, "evm_mine")
        await oracle.lead.listener.poll_once()  # a head of the new chain, above the erased block
        assert (await oracle.job(image_id))["state"] == "submitted"
        held.release.set()
        await sending

        assert (await oracle.job(image_id))["state"] == "submitted"
        await submit(oracle)
        document = await settled_once(stack, oracle, image_id)
        assert document["content_sha256"] == (await oracle.job(image_id))["content_sha256"]
        assert invariant_violations(oracle) == 0


async def test_the_daemon_counts_and_logs_a_confirmed_document_that_does_not_hash_to_the_chain(
    stack: Stack, mode: Mode, caplog: pytest.LogCaptureFixture
) -> None:
    """The invariant check itself: were anything to change a stored document after its hash
    was taken (a bug, a hand edit), the daemon notices when it confirms the job."""
    image = png(np.random.default_rng(41), malignant=False)
    async with drive(stack, mode) as oracle:
        image_id = await register(stack, image, 5)
        await ready(oracle)
        stored = (await oracle.job(image_id))["document"]
        altered = {**stored, "label": "malignant" if stored["label"] == "benign" else "benign"}
        await edit_document(oracle.settings, image_id, altered)
        await submit(oracle)

        assert (await oracle.job(image_id))["state"] == "confirmed"
        assert invariant_violations(oracle) == 1
    assert f"invariant broken: image {image_id}'s stored document does not hash to" in caplog.text
