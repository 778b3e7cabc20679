"""The query API on a real port over a real SQLite file, seeded with jobs."""

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from oracle.api.app import ApiConfig, create_app
from oracle.api.auth import AuthConfig
from oracle.chain.registry import image_id_for
from oracle.ipfs.cid import raw_cid
from oracle.store.db import Database
from oracle.store.models import Job, JobState, Outcome
from tests.support import serve

OWNER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
OTHER = "0x90F79bf6EB2c4f870365E477b33224a9DeDc7c19"
AUTH = AuthConfig(
    domain="localhost:8000",
    uri="http://localhost:8000",
    chain_id=313370,
    registry="0x5FbDB2315678afecb367f032d93F642f64180aa3",
)


def job(index: int, owner: str = OWNER, state: JobState = JobState.CONFIRMED) -> Job:
    cid = raw_cid(index.to_bytes(4, "big"))
    return Job(
        image_id=image_id_for(owner, cid),
        cid=cid,
        owner=owner,
        model_id="0x" + "ab" * 32,
        block_number=10 + index // 3,
        block_hash="0x" + "cd" * 32,
        registration_tx="0x" + f"{index:064x}",
        state=state,
        outcome=Outcome.RESULT if state == JobState.CONFIRMED else None,
        document={"label": "benign"} if state == JobState.CONFIRMED else None,
        result_hash="0x" + "ee" * 32 if state == JobState.CONFIRMED else None,
        created_at=datetime(2026, 11, 22, tzinfo=UTC),
    )


async def seed(db: Database, jobs: list[Job]) -> None:
    async with db.transaction() as session:
        session.add_all(jobs)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'oracle.db'}")
    await db.start()
    yield db
    await db.close()


@pytest.fixture
async def api(database: Database, tmp_path: Path) -> AsyncIterator[str]:
    config = ApiConfig(model_dir=tmp_path / "models", rate_per_second=10_000, rate_burst=10_000)
    runner, url = await serve(create_app(database, config))
    yield url
    await runner.cleanup()


@pytest.fixture
async def auth_api(database: Database) -> AsyncIterator[str]:
    """The API with sign-in (documents, grants, listings)."""
    runner, url = await serve(
        create_app(database, ApiConfig(rate_per_second=10_000, rate_burst=10_000), AUTH)
    )
    yield url
    await runner.cleanup()


@pytest.fixture(scope="module")
def threaded_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """For synchronous clients (schemathesis): the API on its own event loop in a thread."""
    path = tmp_path_factory.mktemp("api") / "oracle.db"
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, object] = {}

    async def start() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.start()
        await seed(db, [job(i) for i in range(5)] + [job(9, OTHER, JobState.QUEUED)])
        runner, url = await serve(create_app(db, ApiConfig(rate_per_second=1000, rate_burst=1000), AUTH))
        state.update(db=db, runner=runner, url=url)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(30)
    yield str(state["url"])

    async def stop() -> None:
        await state["runner"].cleanup()  # type: ignore[attr-defined]
        await state["db"].close()  # type: ignore[attr-defined]

    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
