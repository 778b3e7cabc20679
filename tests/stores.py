"""The distributed mode's stores as a test sees them: where they are, the settings (or the
environment) that point an oracle process at them, and reads of the shared job store. The
fixtures that start them are in tests/conftest.py."""

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from oracle.settings import Settings

# Short enough that a test sees a dead worker's jobs taken over within seconds.
FAST_TAKEOVER = {
    "dispatch_batch": 4,
    "dispatch_lease": 12.0,
    "redelivery_idle": 6.0,
    "ready_poll": 0.1,
    "worker_messages": 1,
}


@dataclass(frozen=True)
class Stores:
    database_url: str
    redis_url: str

    def settings(self, base: Settings) -> Settings:
        """`base` pointed at these stores, with a fast takeover."""
        tuned = base.tuned(**FAST_TAKEOVER)
        return tuned.model_copy(update={"database_url": self.database_url, "redis_url": self.redis_url})

    def environment(self) -> dict[str, str]:
        return {
            "HISTOCHAIN_DATABASE_URL": self.database_url,
            "HISTOCHAIN_REDIS_URL": self.redis_url,
            **{f"HISTOCHAIN_TUNING__{name.upper()}": str(value) for name, value in FAST_TAKEOVER.items()},
        }


async def job_rows(database_url: str) -> dict[str, dict[str, Any]]:
    """Every job row of an oracle's store (SQLite or PostgreSQL), by imageId."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT * FROM jobs"))).mappings().all()
    finally:
        await engine.dispose()
    jobs = {}
    for row in rows:
        job = dict(row)
        if isinstance(job["document"], str):
            job["document"] = json.loads(job["document"])
        jobs[job["image_id"]] = job
    return jobs
