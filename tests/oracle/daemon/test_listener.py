"""The listener's chunking, confirmations and reorg rewind, on a fake chain and a real SQLite job
store: each case is a few blocks, so the whole file runs in well under a second."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from oracle.daemon.jobs import JobRepository
from oracle.daemon.listener import Listener
from oracle.daemon.writes import Classified
from oracle.metrics import Metrics
from oracle.settings import Tuning
from oracle.store.db import Database
from oracle.store.models import JobState
from tests.oracle.daemon.fakes import FakeChain

A, B, C = ("0x" + c * 64 for c in "abc")


@dataclass
class Harness:
    chain: FakeChain
    jobs: JobRepository
    listener: Listener
    queued: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)

    async def state(self, image_id: str) -> JobState:
        job = await self.jobs.get(image_id)
        assert job is not None
        return job.state


async def harness(tmp_path: Path, **tuning: int) -> AsyncIterator[Harness]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'oracle.db'}")
    await db.start()
    chain = FakeChain()
    jobs = JobRepository(db, "image-registered", chain.deployment.block)
    queued: list[str] = []
    resent: list[str] = []
    settings = Tuning(**({"confirmations": 0, "reorg_depth": 4} | tuning))
    listener = Listener(jobs, chain, settings, Metrics({}), queued.extend, resent.extend)
    yield Harness(chain, jobs, listener, queued, resent)
    await db.close()


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async for each in harness(tmp_path):
        yield each


async def test_catch_up_reads_logs_in_chunks_and_queues_each_registration_once(tmp_path: Path) -> None:
    async for h in harness(tmp_path, log_chunk_blocks=3):
        for i in range(7):
            h.chain.mine(*([A] if i == 1 else [B] if i == 5 else []))
        await h.listener.poll_once()
        await h.listener.poll_once()
        assert h.chain.log_reads == [(1, 3), (4, 6), (7, 7)]
        assert h.queued == [A, B]
        assert (await h.jobs.checkpoint()).block_number == 7


async def test_a_registration_waits_for_its_confirmations(tmp_path: Path) -> None:
    async for h in harness(tmp_path, confirmations=2):
        h.chain.mine(A)
        await h.listener.poll_once()
        assert h.queued == []
        h.chain.mine()
        h.chain.mine()
        await h.listener.poll_once()
        assert h.queued == [A]


async def test_a_reorg_of_the_registration_block_supersedes_the_job_and_queues_the_new_one(
    h: Harness,
) -> None:
    h.chain.mine()
    h.chain.mine(A, B)
    await h.listener.poll_once()
    assert h.queued == [A, B]
    h.chain.reorg(1, then=2)
    h.chain.mine(A)  # the same owner registers A again; B is gone for good
    await h.listener.poll_once()
    assert h.queued == [A, B, A]
    assert await h.state(A) == JobState.QUEUED
    assert await h.state(B) == JobState.SUPERSEDED
    assert h.resent == []


async def test_a_reorg_that_drops_only_the_settling_transaction_resends_the_same_document(
    h: Harness,
) -> None:
    h.chain.mine(A)
    await h.listener.poll_once()
    job = await h.jobs.get(A)
    assert job is not None
    await h.jobs.classified([Classified(A, job.block_hash, "00" * 32, {"salt": "1"}, "0x" + "11" * 32)])
    (job,) = await h.jobs.load([A], [JobState.CLASSIFIED])
    await h.jobs.signing([job], "0xfeed")
    (job,) = await h.jobs.load([A], [JobState.SUBMITTED])
    settled = h.chain.mine(transactions=("0xfeed",))
    await h.jobs.confirmed([job], settled.number, "0xfeed")
    await h.listener.poll_once()
    h.chain.reorg(1, then=2)  # the block holding 0xfeed is gone; A's registration stands
    await h.listener.poll_once()
    assert h.resent == [A]
    assert await h.state(A) == JobState.SUBMITTED
    assert (await h.jobs.get(A)).result_hash == "0x" + "11" * 32  # type: ignore[union-attr]


async def test_logs_read_while_the_chain_changed_are_not_recorded(h: Harness) -> None:
    h.chain.mine(A)
    h.chain.on_read_logs.append(lambda: h.chain.reorg(1, then=1))
    await h.listener.poll_once()
    assert h.queued == []
    assert (await h.jobs.checkpoint()).block_number == 0
    h.chain.mine(C)
    await h.listener.poll_once()
    assert h.queued == [C]


async def test_a_rewind_never_goes_below_the_deployment_block(h: Harness) -> None:
    h.chain.mine(A)
    await h.listener.poll_once()
    h.chain.reorg(1, then=1)
    await h.listener.poll_once()
    assert h.chain.log_reads[-1][0] == h.chain.deployment.block
