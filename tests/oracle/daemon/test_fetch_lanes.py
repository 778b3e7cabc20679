"""The fetch stage's lanes, on a fake chain and gateway and a real SQLite job store: how long a
try may hold a worker in each."""

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oracle.daemon.core import Core, Lanes
from oracle.daemon.jobs import JobRepository
from oracle.daemon.stages.fetch import FetchStage
from oracle.imaging import InputPolicy
from oracle.ipfs.fetch import Attempt
from oracle.metrics import Metrics
from oracle.settings import Tuning
from oracle.store.db import Database
from tests.oracle.daemon.fakes import FakeChain

IMAGE = "0x" + "ab" * 32


class SilentGateways:
    """Every try runs out of time; records how long each was given."""

    def __init__(self) -> None:
        self.windows: list[float] = []

    async def attempt(self, text: str, deadline: float) -> Attempt:
        self.windows.append(deadline - time.monotonic())
        return Attempt(failures=["gateway: timed out"], slow=True)


class NeverOpened:
    async def open(self, *args: object) -> object:
        raise AssertionError("nothing was fetched, so nothing is opened")


@pytest.fixture
async def stage(tmp_path: Path) -> AsyncIterator[tuple[FetchStage, SilentGateways]]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'oracle.db'}")
    await db.start()
    chain = FakeChain()
    jobs = JobRepository(db, "image-registered", chain.deployment.block)
    block = chain.mine(IMAGE)
    await jobs.record(block.registrations, block.number, block.hash)
    tuning = Tuning(fast_fetch_deadline=5, fetch_deadline=60, retry_delay=0.01)
    core = Core(jobs, chain, tuning, Metrics({}), Lanes(tuning.decoded_budget))
    gateways = SilentGateways()
    yield FetchStage(core, gateways, NeverOpened(), lambda model, pixels: InputPolicy(pixels)), gateways  # type: ignore[arg-type]
    await db.close()


async def test_a_cid_nobody_answers_holds_a_fast_worker_briefly_then_waits_in_the_slow_lane(
    stage: tuple[FetchStage, SilentGateways],
) -> None:
    fetch, gateways = stage
    await fetch.fetch(IMAGE)
    assert IMAGE in fetch.core.slow
    assert await fetch.core.lanes.slow.get() == IMAGE
    await fetch.fetch(IMAGE)

    first, second = gateways.windows
    assert 4 < first <= 5
    assert 55 < second <= 60
