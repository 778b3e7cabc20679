"""Submit: ready outcomes in batches, results in one postResults transaction and failures in one
reportFailures, after the chain is read again (it decides); what a transaction settled is
recorded, and the invariant checked on it."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from oracle.chain.errors import ChainError
from oracle.chain.reasons import FailureReason
from oracle.chain.registry import Status
from oracle.chain.submitter import Sent
from oracle.daemon.core import Core, gather_batch
from oracle.daemon.ports import Sender
from oracle.daemon.writes import SENDABLE_STATES, StaleJobs
from oracle.store.models import Job, JobState, Outcome

log = logging.getLogger("histochain.oracle")


class SubmitStage:
    def __init__(self, core: Core, sender: Sender) -> None:
        self.core, self.sender = core, sender
        # Images of a batch whose transaction reverted: each is sent alone until it settles, so
        # that a row the registry refuses reverts alone and the others go through.
        self.alone: set[str] = set()

    async def loop(self, stop: asyncio.Event) -> None:
        queue, tuning = self.core.lanes.submit, self.core.tuning
        while not stop.is_set():
            first = await queue.get()
            batch = await gather_batch(queue, first, tuning.submit_batch, tuning.submit_wait)
            image_ids = list(dict.fromkeys(batch))
            together = [i for i in image_ids if i not in self.alone]
            for group in [[i] for i in image_ids if i in self.alone] + ([together] if together else []):
                try:
                    await self.submit(group)
                except Exception as exc:  # noqa: BLE001 - the chain and the rows are read again before a resend
                    await self.core.later(queue, group, "submit", exc)

    async def submit(self, image_ids: list[str]) -> None:
        """Settles what the chain already settled; sends the rest (results in one transaction)."""
        core = self.core
        jobs = await core.jobs.load(image_ids, SENDABLE_STATES)
        records = await core.chain.images([j.image_id for j in jobs])
        pending: list[Job] = []
        for job, record in zip(jobs, records, strict=True):
            if record.status == Status.PENDING:
                pending.append(job)
            else:
                await core.settle(job, record)
        pending = await self._registered(pending)
        results = [j for j in pending if j.outcome == Outcome.RESULT]
        failures = [j for j in pending if j.outcome != Outcome.RESULT]
        if results:
            pairs = [(j.image_id, j.result_hash or "") for j in results]
            await self._send(results, self.sender.post_results(pairs, self._signing(results)))
        if failures:
            reasons = [(j.image_id, j.failure_reason or 0) for j in failures]
            await self._send(failures, self.sender.report_failures(reasons, self._signing(failures)))

    async def _registered(self, jobs: list[Job]) -> list[Job]:
        """Of the jobs sent before (a receipt lost, a transaction dropped: reorg territory), those
        whose registration block is still canonical; the listener settles the others."""
        blocks = {job.block_number for job in jobs if job.state == JobState.SUBMITTED}
        found = await asyncio.gather(*map(self.core.chain.block_hash_or_none, blocks))
        hashes = dict(zip(blocks, found, strict=True))
        kept = [j for j in jobs if j.state != JobState.SUBMITTED or hashes[j.block_number] == j.block_hash]
        if len(kept) < len(jobs):
            log.warning(
                "%d job(s) not sent again: their registration block left the chain", len(jobs) - len(kept)
            )
        return kept

    async def _send(self, jobs: list[Job], sending: Awaitable[Sent]) -> None:
        """Awaits one transaction carrying `jobs`' outcomes and records what it settled. Whatever
        it did not settle, or settled for a row that has moved on since, is looked at again."""
        core, queue = self.core, self.core.lanes.submit
        try:
            sent = await sending
        except StaleJobs as exc:  # nothing was broadcast
            core.metrics.stale_writes.labels("signing").inc(len(exc.image_ids))
            for job in jobs:
                if job.image_id not in exc.image_ids:
                    queue.put(job.image_id)
            return
        core.metrics.transactions.inc()
        core.metrics.gas.inc(sent.gas_used)
        done = [j for j in jobs if j.image_id in sent.posted or j.image_id in sent.failed]
        confirmed, lost = await core.confirm(done, sent.block_number, sent.tx_hash)
        written = set(confirmed)
        core.metrics.stale_writes.labels("confirmed").inc(len(done) - len(written) - len(lost))
        core.finished([j for j in done if j.image_id in written])
        await core.check({i: h for i, h in sent.posted.items() if i in written})
        self.alone -= written
        again = [j.image_id for j in jobs if j.image_id not in written and j.image_id not in lost]
        if again and sent.status != 1:
            reverted = ChainError(f"transaction {sent.tx_hash} reverted")
            if len(jobs) == 1:
                await self._reverted_alone(jobs[0], reverted)
                return
            self.alone.update(again)
            await core.later(queue, again, "submit", reverted)
        elif again:
            for image_id in again:
                queue.put(image_id)

    async def _reverted_alone(self, job: Job, reverted: ChainError) -> None:
        """Tried again while the job has attempts left (max_attempts, counted in its row across
        restarts); then a result becomes a MODEL_ERROR failure to report, which the registry takes."""
        core, queue = self.core, self.core.lanes.submit
        rows = await core.jobs.load([job.image_id], SENDABLE_STATES)
        row = rows[0] if rows else None
        if row is None or row.outcome != Outcome.RESULT or row.attempts < core.tuning.max_attempts:
            await core.later(queue, [job.image_id], "submit", reverted)
            return
        error = f"the registry refused its result: {reverted}, sent alone, after {row.attempts} attempts"
        if await core.jobs.unsendable(row, int(FailureReason.MODEL_ERROR), error):
            log.error("image %s: %s; reported as MODEL_ERROR", job.image_id, error)
            core.metrics.unsendable.inc()
        self.alone.discard(job.image_id)
        queue.put(job.image_id)

    def _signing(self, jobs: Sequence[Job]) -> Callable[[str], Awaitable[None]]:
        async def record(tx_hash: str) -> None:
            await self.core.jobs.signing(jobs, tx_hash)

        return record
