"""The submit stage's batching and its handling of a reverted or failed send, on a fake chain and
sender and a real SQLite job store; and the micro-batch gatherer both batching stages use."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from oracle.chain.reasons import FailureReason
from oracle.chain.registry import Status
from oracle.daemon.core import Core, Lanes, gather_batch
from oracle.daemon.jobs import JobRepository
from oracle.daemon.queues import DelayedQueue
from oracle.daemon.stages.submit import SubmitStage
from oracle.daemon.stream import Collect
from oracle.daemon.writes import Classified
from oracle.document import verify
from oracle.jcs import commitment
from oracle.metrics import Metrics
from oracle.settings import Tuning
from oracle.store.db import Database
from oracle.store.models import JobState
from tests.oracle.daemon.fakes import FakeChain, FakeSender

IDS = ["0x" + f"{i:064x}" for i in range(1, 6)]


@dataclass
class Harness:
    chain: FakeChain
    sender: FakeSender
    jobs: JobRepository
    core: Core
    stage: SubmitStage

    def violations(self) -> float | None:
        return self.core.metrics.registry.get_sample_value("histochain_invariant_violations_total")


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'oracle.db'}")
    await db.start()
    chain = FakeChain()
    jobs = JobRepository(db, "image-registered", chain.deployment.block)
    block = chain.mine(*IDS)
    await jobs.record(block.registrations, block.number, block.hash)
    tuning = Tuning(retry_delay=0.01, submit_wait=0.05)
    core = Core(jobs, chain, tuning, Metrics({}), Lanes(tuning.decoded_budget))
    sender = FakeSender(chain)
    yield Harness(chain, sender, jobs, core, SubmitStage(core, sender))
    await db.close()


async def ready(h: Harness) -> None:
    """IDS[0..2] classified, IDS[3..4] failed: what the fetch and classify stages leave."""
    block_hash = h.chain.blocks[-1].hash
    documents = {i: {"image_id": i, "salt": str(n)} for n, i in enumerate(IDS[:3])}
    await h.jobs.classified(
        [Classified(i, block_hash, "00" * 32, d, "0x" + commitment(d).hex()) for i, d in documents.items()]
    )
    for image_id in IDS[3:]:
        job = await h.jobs.get(image_id)
        assert job is not None
        await h.jobs.failed(job, int(FailureReason.NOT_DECRYPTABLE), "not for this oracle")


async def test_one_batch_is_one_transaction_of_results_and_one_of_failures(h: Harness) -> None:
    await ready(h)
    await h.stage.submit(IDS)
    assert h.sender.sent == [("postResults", IDS[:3]), ("reportFailures", IDS[3:])]
    assert {(await h.jobs.get(i)).state for i in IDS} == {JobState.CONFIRMED}  # type: ignore[union-attr]
    for image_id in IDS[:3]:
        job = await h.jobs.get(image_id)
        assert job is not None
        assert job.document is not None
        assert verify(job.document, bytes.fromhex(h.chain.records[image_id].result_hash[2:]))
    assert h.chain.records[IDS[4]].status == Status.FAILED
    assert h.violations() == 0


async def test_a_reverted_transaction_confirms_nothing_and_its_jobs_come_back_later(h: Harness) -> None:
    await ready(h)
    h.sender.revert = True
    await h.stage.submit(IDS[:3])
    assert {(await h.jobs.get(i)).state for i in IDS[:3]} == {JobState.SUBMITTED}  # type: ignore[union-attr]
    again = [await h.core.lanes.submit.get() for _ in range(3)]
    assert sorted(again) == IDS[:3]
    assert h.core.tries["submit", IDS[0]] == 1
    await h.stage.submit(again)
    assert {(await h.jobs.get(i)).state for i in IDS[:3]} == {JobState.CONFIRMED}  # type: ignore[union-attr]


async def test_an_unexpected_error_in_a_send_requeues_the_whole_batch(h: Harness) -> None:
    await ready(h)
    h.sender.explode = RuntimeError("the RPC node went away")
    for image_id in IDS[:3]:
        h.core.lanes.submit.put(image_id)
    stop = asyncio.Event()
    loop = asyncio.create_task(h.stage.loop(stop))
    assert await h.sender.calls.get() == ("postResults", IDS[:3])  # raised
    assert await h.sender.calls.get() == ("postResults", IDS[:3])  # the retry, mined
    stop.set()
    loop.cancel()
    # Awaited here, while the store is open: a send cut off mid-write must roll back before it closes.
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    assert h.sender.sent == [("postResults", IDS[:3])]
    assert h.core.metrics.registry.get_sample_value("histochain_retries_total", {"stage": "submit"}) == 3


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the timeout"
        await asyncio.sleep(0.01)


async def confirmed(h: Harness, image_id: str) -> bool:
    job = await h.jobs.get(image_id)
    return job is not None and job.state == JobState.CONFIRMED


async def holds(lane: DelayedQueue[str], image_ids: list[str]) -> bool:
    return all(i in lane for i in image_ids)


async def test_a_result_the_registry_keeps_refusing_is_sent_alone_then_reported_as_a_failure(
    h: Harness,
) -> None:
    """One bad row reverts its whole batch: the batch's images are then sent one per transaction,
    so the others settle; the bad one, reverting alone with its attempts spent, is failed as
    MODEL_ERROR and reported, which the registry takes (the owner's fee comes back)."""
    await ready(h)
    h.core.tuning = h.core.tuning.model_copy(update={"max_attempts": 3})
    bad = IDS[1]
    h.sender.refused.add(bad)
    for image_id in IDS[:3]:
        h.core.lanes.submit.put(image_id)
    stop = asyncio.Event()
    loop = asyncio.create_task(h.stage.loop(stop))
    try:
        await until(lambda: confirmed(h, bad))
    finally:
        stop.set()
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
    assert h.sender.sent[0] == ("postResults", IDS[:3])
    assert [call for call in h.sender.sent if call[1] == [bad]] == [
        ("postResults", [bad]),
        ("reportFailures", [bad]),
    ]
    assert {h.chain.records[i].status for i in (IDS[0], IDS[2])} == {Status.CLASSIFIED}
    assert h.chain.records[bad].status == Status.FAILED
    job = await h.jobs.get(bad)
    assert job is not None
    assert (job.state, job.failure_reason, job.result_hash) == (
        JobState.CONFIRMED,
        FailureReason.MODEL_ERROR,
        None,
    )
    assert job.error is not None
    assert "reverted, sent alone, after 3 attempts" in job.error
    assert h.core.metrics.registry.get_sample_value("histochain_unsendable_results_total") == 1
    assert h.stage.alone == set()


async def test_new_outcomes_reach_the_submit_lane_while_a_retry_waits_out_its_backoff(h: Harness) -> None:
    """The coordinator takes the outcomes workers wrote whatever waits in the lane: a row that
    keeps failing, waiting out a long backoff there, holds up no one."""
    await ready(h)
    lane = h.core.lanes.submit
    lane.put(IDS[0], delay=3600)
    stop = asyncio.Event()
    collect = asyncio.create_task(Collect(h.core).loop(stop))
    try:
        await until(lambda: holds(lane, IDS[1:]))
    finally:
        stop.set()
        collect.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collect
    assert lane.qsize() == len(IDS), "each once: the one waiting is not added again"


async def test_a_batch_takes_what_arrives_within_the_wait_and_no_more_than_its_size() -> None:
    queue: DelayedQueue[int] = DelayedQueue()
    for item in range(1, 6):
        queue.put(item)
    queue.put(99, delay=60)  # due long after the wait
    assert await gather_batch(queue, 0, size=4, wait=0.05) == [0, 1, 2, 3]
    assert await gather_batch(queue, 0, size=10, wait=0.05) == [0, 4, 5]
