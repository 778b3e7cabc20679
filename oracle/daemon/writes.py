"""Compare-and-set writes on job rows, and the states and records they speak of: what
`JobRepository` (jobs.py, the only writer of job rows) writes with. A write names the row as it was
read (state, registration block hash, outcome) and changes it only if it still is."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from oracle.store.models import Job, JobState

READY_STATES = (JobState.CLASSIFIED, JobState.FAILED)
SENDABLE_STATES = (*READY_STATES, JobState.SUBMITTED)
OPEN_STATES = (JobState.QUEUED, *SENDABLE_STATES)


@dataclass(frozen=True)
class Classified:
    """A classification to write into a job that is still waiting for one."""

    image_id: str
    block_hash: str
    content_sha256: str
    document: dict[str, Any]
    result_hash: str


class StaleJobs(Exception):
    """Some rows moved on since they were read; nothing was written for any of them."""

    def __init__(self, image_ids: Sequence[str]) -> None:
        super().__init__(f"{len(image_ids)} job(s) changed since they were read")
        self.image_ids = list(image_ids)


def still(job: Job, states: Iterable[JobState]) -> ColumnElement[bool]:
    """The row `job` was read from, still in one of `states`."""
    return and_(Job.image_id == job.image_id, Job.block_hash == job.block_hash, Job.state.in_(list(states)))


async def cas(session: AsyncSession, where: ColumnElement[bool], values: dict[str, Any]) -> bool:
    result = await session.execute(
        update(Job).where(where).values(**values).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def cas_many(
    session: AsyncSession, jobs: Sequence[Job], states: Iterable[JobState], values: dict[str, Any]
) -> set[str]:
    """`cas` for a batch in one UPDATE … RETURNING per kind of outcome (a round trip per batch,
    not per job): each row still in `states`, for the registration and the outcome it was read
    with. Returns the image ids written."""
    results = [(j.image_id, j.block_hash, j.result_hash) for j in jobs if j.result_hash is not None]
    failures = [(j.image_id, j.block_hash, j.failure_reason) for j in jobs if j.result_hash is None]
    conditions: list[ColumnElement[bool]] = []
    if results:
        conditions.append(tuple_(Job.image_id, Job.block_hash, Job.result_hash).in_(results))
    if failures:
        read = tuple_(Job.image_id, Job.block_hash, Job.failure_reason).in_(failures)
        conditions.append(and_(Job.result_hash.is_(None), read))
    written: set[str] = set()
    for condition in conditions:
        statement = update(Job).where(condition, Job.state.in_(list(states))).values(**values)
        rows = await session.execute(
            statement.returning(Job.image_id).execution_options(synchronize_session=False)
        )
        written.update(rows.scalars())
    return written
