"""The job repository: the only code that writes job rows.

Every write is a compare-and-set on what the writer last read: the job's state and the hash of the
block its registration is in (and, for a submission, the result hash it carries). A write whose
row has moved on changes nothing and says so, so a stage acting on a stale view (a classification
finishing after a reorg replaced its registration, a receipt arriving for a submission a reorg
erased) can never overwrite a newer attempt. Once a document is signed into a transaction, only a
reorg that erased its registration or its submission starts another attempt, explicitly.

Every document ever signed into a transaction is also kept in `signed_documents`: a transaction a
reorg returned to the mempool may still land, and the document it commits to must not be lost.
"""

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oracle.chain.registry import Registration
from oracle.daemon.writes import (
    OPEN_STATES,
    READY_STATES,
    SENDABLE_STATES,
    Classified,
    StaleJobs,
    cas,
    cas_many,
    still,
)
from oracle.store.db import Database
from oracle.store.models import Checkpoint, Job, JobState, Outcome, SignedDocument, Strike, now


class JobRepository:
    def __init__(self, db: Database, listener: str, start_block: int) -> None:
        self.db, self.listener, self.start_block = db, listener, start_block
        self.head_name = f"{listener}:head"

    # ------------------------------------------------------------------ reads

    async def checkpoint(self) -> Checkpoint:
        """The last block whose logs are all jobs."""
        return await self._checkpoint(self.listener)

    async def head(self) -> Checkpoint:
        """The newest block the listener has seen: the oracle's own transactions may lie above
        the checkpoint, and a reorg that erases only them must be noticed too."""
        return await self._checkpoint(self.head_name)

    async def _checkpoint(self, name: str) -> Checkpoint:
        async with self.db.transaction() as session:
            return await self._row(session, name)

    async def _row(self, session: AsyncSession, name: str) -> Checkpoint:
        checkpoint = await session.get(Checkpoint, name)
        if checkpoint is None:  # "": no block hash recorded yet
            checkpoint = Checkpoint(name=name, block_number=self.start_block - 1, block_hash="")
            session.add(checkpoint)
        return checkpoint

    async def get(self, image_id: str) -> Job | None:
        async with self.db.transaction() as session:
            return await session.get(Job, image_id)

    async def load(self, image_ids: Sequence[str], states: Sequence[JobState]) -> list[Job]:
        async with self.db.transaction() as session:
            query = select(Job).where(Job.image_id.in_(image_ids), Job.state.in_(states))
            return list((await session.scalars(query)).all())

    async def unfinished(self) -> list[Job]:
        return await self._where(Job.state.in_(OPEN_STATES))

    async def since(self, block: int) -> list[Job]:
        """Jobs whose registration or whose settling transaction is in a block after `block`."""
        return await self._where((Job.block_number > block) | (Job.confirmed_block > block))

    async def _where(self, condition: ColumnElement[bool]) -> list[Job]:
        async with self.db.transaction() as session:
            return list((await session.scalars(select(Job).where(condition))).all())

    async def ready(self, limit: int) -> list[str]:
        """Distributed: outcomes workers wrote that wait to be sent, oldest first."""
        query = select(Job.image_id).where(Job.state.in_(READY_STATES)).order_by(Job.updated_at).limit(limit)
        async with self.db.transaction() as session:
            return list((await session.scalars(query)).all())

    async def overdue(self, lease: float, limit: int) -> list[str]:
        """Distributed: queued jobs no worker has touched for `lease` seconds (a worker died after
        taking them); they are marked as dispatched again now, and returned to be."""
        async with self.db.transaction() as session:
            stale = and_(Job.state == JobState.QUEUED, Job.updated_at < now() - timedelta(seconds=lease))
            ids = list((await session.scalars(select(Job.image_id).where(stale).limit(limit))).all())
            if ids:
                await session.execute(
                    update(Job).where(stale, Job.image_id.in_(ids)).values(updated_at=now())
                )
            return ids

    async def signed_document(self, image_id: str, result_hash: str) -> dict[str, Any] | None:
        async with self.db.transaction() as session:
            row = await session.get(SignedDocument, (image_id, result_hash))
            return None if row is None else row.document

    async def documents(self, image_ids: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """The stored document of each job, as the API would serve it."""
        async with self.db.transaction() as session:
            rows = await session.execute(
                select(Job.image_id, Job.document).where(Job.image_id.in_(image_ids))
            )
            return {image_id: document for image_id, document in rows}

    # ------------------------------------------------------------------ listener

    async def record(self, registrations: Sequence[Registration], end: int, end_hash: str) -> list[str]:
        """Jobs for new registrations and the checkpoint move in one transaction. A registration
        seen again in another block (made again after a reorg) starts a new job: a record is
        registered at most once per chain, so the old one's block is no longer canonical."""
        queued = []
        async with self.db.transaction() as session:
            ids = [r.image_id for r in registrations]
            stored = await session.scalars(select(Job).where(Job.image_id.in_(ids)))
            known = {job.image_id: job.block_hash for job in stored}
            for r in registrations:
                if known.get(r.image_id) == r.block_hash:
                    continue
                if r.image_id in known:
                    await session.flush()  # an insert earlier in this chunk goes first
                    await session.execute(delete(Job).where(Job.image_id == r.image_id))
                session.add(
                    Job(
                        image_id=r.image_id,
                        cid=r.cid,
                        owner=r.owner,
                        model_id=r.model_id,
                        block_number=r.block_number,
                        block_hash=r.block_hash,
                        registration_tx=r.transaction,
                        state=JobState.QUEUED,
                    )
                )
                known[r.image_id] = r.block_hash
                queued.append(r.image_id)
            await self._move_checkpoint(session, end, end_hash)
        return queued

    async def rewind(self, block: int) -> None:
        """Moves the checkpoint back to `block` with no hash: the next pass rescans from there."""
        async with self.db.transaction() as session:
            await self._move_checkpoint(session, block, "")
            await self._move_checkpoint(session, block, "", self.head_name)

    async def saw_head(self, block: int, block_hash: str) -> None:
        async with self.db.transaction() as session:
            await self._move_checkpoint(session, block, block_hash, self.head_name)

    async def _move_checkpoint(
        self, session: AsyncSession, block: int, block_hash: str, name: str | None = None
    ) -> None:
        checkpoint = await self._row(session, name or self.listener)
        checkpoint.block_number, checkpoint.block_hash = block, block_hash

    async def erased(self, job: Job) -> bool:
        """A reorg erased the block of `job`'s registration: this attempt is over. A registration
        made again in the new chain is recorded as a new job by the rescan."""
        return await self.supersede(job, "registration erased by a reorg", list(JobState))

    async def unsettled(self, job: Job) -> bool:
        """A reorg erased the transaction that settled `job`, not its registration: the same
        document (or failure) goes out again, so whichever transaction lands commits to it."""
        async with self.db.transaction() as session:
            return await cas(
                session,
                still(job, [JobState.CONFIRMED]),
                {"state": JobState.SUBMITTED, "confirmed_block": None},
            )

    # ------------------------------------------------------------------ stages

    async def classified(self, results: Sequence[Classified]) -> list[str]:
        """Writes each classification into its job only if that job is still queued for the same
        registration; returns the image ids written."""
        written = []
        async with self.db.transaction() as session:
            for r in results:
                where = and_(
                    Job.image_id == r.image_id, Job.block_hash == r.block_hash, Job.state == JobState.QUEUED
                )
                values = {
                    "state": JobState.CLASSIFIED,
                    "outcome": Outcome.RESULT,
                    "content_sha256": r.content_sha256,
                    "document": r.document,
                    "result_hash": r.result_hash,
                }
                if await cas(session, where, values):
                    written.append(r.image_id)
        return written

    async def failed(self, job: Job, reason: int, error: str) -> bool:
        async with self.db.transaction() as session:
            return await cas(
                session,
                still(job, [JobState.QUEUED]),
                {
                    "state": JobState.FAILED,
                    "outcome": Outcome.FAILURE,
                    "failure_reason": reason,
                    "error": error,
                },
            )

    async def signing(self, jobs: Sequence[Job], tx_hash: str) -> None:
        """Before a transaction carrying `jobs`' outcomes is broadcast: all of them become
        submitted with it, and their documents are kept, or nothing is written and `StaleJobs`
        is raised so that the transaction is never sent."""
        async with self.db.transaction() as session:
            values = {"state": JobState.SUBMITTED, "submit_tx": tx_hash, "attempts": Job.attempts + 1}
            written = await cas_many(session, jobs, SENDABLE_STATES, values)
            stale = [job.image_id for job in jobs if job.image_id not in written]
            if stale:
                raise StaleJobs(stale)  # rolls the whole transaction back
            signed = {(job.image_id, job.result_hash): job for job in jobs if job.result_hash is not None}
            kept = await session.execute(
                select(SignedDocument.image_id, SignedDocument.result_hash).where(
                    SignedDocument.image_id.in_([image_id for image_id, _ in signed])
                )
            )
            for key in set(signed) - {(image_id, result_hash) for image_id, result_hash in kept}:
                job = signed[key]
                session.add(
                    SignedDocument(image_id=job.image_id, result_hash=job.result_hash, document=job.document)
                )

    async def confirmed(self, jobs: Sequence[Job], block: int | None, tx: str | None) -> list[str]:
        """Jobs whose outcome, as read, the chain now holds; returns those written (a row that
        moved on since, e.g. a reorg replaced it, is left for the next pass to look at)."""
        values: dict[str, Any] = {"state": JobState.CONFIRMED, "confirmed_block": block}
        if tx is not None:
            values["submit_tx"] = tx
        async with self.db.transaction() as session:
            written = await cas_many(session, jobs, SENDABLE_STATES, values)
        return [job.image_id for job in jobs if job.image_id in written]

    async def adopt(self, job: Job, document: dict[str, Any], result_hash: str, block: int | None) -> bool:
        """The chain holds a document this oracle signed for an earlier attempt at this image (a
        transaction a reorg returned to the mempool landed): that document becomes the job's."""
        async with self.db.transaction() as session:
            values = {
                "state": JobState.CONFIRMED,
                "outcome": Outcome.RESULT,
                "failure_reason": None,
                "content_sha256": document.get("content_sha256"),
                "document": document,
                "result_hash": result_hash,
                "confirmed_block": block,
            }
            return await cas(session, still(job, OPEN_STATES), values)

    async def unsendable(self, job: Job, reason: int, error: str) -> bool:
        """A result the registry keeps refusing (its transaction reverts when sent alone) becomes
        a failure to report, so that the chain, the owner and the fee are told."""
        async with self.db.transaction() as session:
            values = {
                "state": JobState.FAILED,
                "outcome": Outcome.FAILURE,
                "failure_reason": reason,
                "error": error,
                "document": None,
                "result_hash": None,
            }
            return await cas(session, still(job, SENDABLE_STATES), values)

    async def supersede(self, job: Job, why: str, states: Iterable[JobState]) -> bool:
        async with self.db.transaction() as session:
            return await cas(session, still(job, states), {"state": JobState.SUPERSEDED, "error": why})

    async def strike(self, image_id: str) -> int:
        """One more strike against an image; returns how many it has."""
        async with self.db.transaction() as session:
            row = await session.get(Strike, image_id)
            if row is None:
                row = Strike(image_id=image_id, count=0)
                session.add(row)
            row.count += 1
            return row.count

    async def retried(self, image_ids: Sequence[str], error: str) -> None:
        """Counts a failed attempt; it changes no state, so it needs no compare."""
        async with self.db.transaction() as session:
            await session.execute(
                update(Job).where(Job.image_id.in_(image_ids)).values(attempts=Job.attempts + 1, error=error)
            )
