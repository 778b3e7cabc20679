"""What the stages share: the queues between them, the count of tries this run, and the ways a
job ends (failed with a reason, settled from what the chain holds, superseded). The invariant
check lives here too: every job confirmed with a result stores the document whose hash the
chain holds."""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from oracle.chain.reasons import FailureReason
from oracle.chain.registry import ImageRecord, Status
from oracle.daemon.ports import Chain, Jobs, WorkQueue
from oracle.daemon.queues import ByteBudget, DelayedQueue
from oracle.daemon.writes import OPEN_STATES
from oracle.jcs import commitment
from oracle.metrics import Metrics
from oracle.settings import Tuning
from oracle.store.models import Job, JobState, Outcome

log = logging.getLogger("histochain.oracle")


async def gather_batch(
    queue: "WorkQueue[Any] | asyncio.Queue[Any]", first: Any, size: int, wait: float
) -> list[Any]:
    """`first` plus whatever else arrives within `wait` seconds, at most `size` items."""
    batch = [first]
    deadline = time.monotonic() + wait
    while len(batch) < size:
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            break
        try:
            batch.append(await asyncio.wait_for(queue.get(), timeout))
        except TimeoutError:
            break
    return batch


async def unsettle_moved(chain: Chain, jobs: Jobs, settled: Iterable[tuple[Job, str, int]]) -> list[str]:
    """Of `settled` (a confirmed job, the transaction that settled it, the block it was recorded
    in), those whose transaction the chain no longer holds in that block, each moved back to
    submitted so that the same outcome goes out again. Each transaction is looked up once."""
    where: dict[str, int | None] = {}
    moved = []
    for job, tx, block in settled:
        if tx not in where:
            where[tx] = await chain.mined_in(tx)
        if where[tx] != block and await jobs.unsettled(job):
            moved.append(job.image_id)
    return moved


@dataclass
class Lanes:
    """The queues between stages. Retries wait in them, never in a worker; slow CIDs get a lane
    of their own; decoded images are bounded in bytes, not count."""

    decoded_budget: int
    fetch: WorkQueue[str] = field(default_factory=DelayedQueue)
    slow: WorkQueue[str] = field(default_factory=DelayedQueue)
    classify: "asyncio.Queue[Any]" = field(default_factory=asyncio.Queue)
    upscale: "asyncio.Queue[Any]" = field(default_factory=asyncio.Queue)  # SR batches: a lane of their own
    submit: WorkQueue[str] = field(default_factory=DelayedQueue)
    budget: ByteBudget = field(init=False)

    def __post_init__(self) -> None:
        self.budget = ByteBudget(self.decoded_budget)


class Core:
    def __init__(self, jobs: Jobs, chain: Chain, tuning: Tuning, metrics: Metrics, lanes: Lanes) -> None:
        self.jobs, self.chain, self.tuning, self.metrics, self.lanes = jobs, chain, tuning, metrics, lanes
        self.tries: Counter[tuple[str, str]] = Counter()  # (stage, imageId): tries this run
        self.slow: set[str] = set()

    def lane(self, image_id: str) -> WorkQueue[str]:
        return self.lanes.slow if image_id in self.slow else self.lanes.fetch

    def backoff(self, stage: str, image_id: str) -> float:
        tries = max(1, self.tries[stage, image_id])
        return float(min(self.tuning.retry_cap, self.tuning.retry_delay * 2 ** (tries - 1)))

    async def later(
        self, queue: WorkQueue[str], image_ids: Sequence[str], stage: str, exc: Exception
    ) -> None:
        """Our own fault (RPC, database, model): the jobs go back to `queue`, due after a backoff
        that grows with each try; nothing waits in a worker."""
        if not image_ids:
            return
        log.warning(
            "%s of %d job(s) failed, retrying: %s: %s", stage, len(image_ids), type(exc).__name__, exc
        )
        self.metrics.retries.labels(stage).inc(len(image_ids))
        with contextlib.suppress(Exception):
            await self.jobs.retried(image_ids, str(exc))
        for image_id in image_ids:
            self.tries[stage, image_id] += 1
            queue.put(image_id, self.backoff(stage, image_id))

    def forget(self, image_id: str) -> None:
        """What this run kept about an image while it was being fetched and classified."""
        self.slow.discard(image_id)
        for stage in ("fetch", "classify"):
            self.tries.pop((stage, image_id), None)

    async def fail(self, job: Job, reason: FailureReason, error: str) -> None:
        self.forget(job.image_id)
        if not await self.jobs.failed(job, int(reason), error):
            self.metrics.stale_writes.labels("failed").inc()
            return
        log.info("image %s fails: %s (%s)", job.image_id, reason.name, error)
        self.lanes.submit.put(job.image_id)

    async def settle(self, job: Job, record: ImageRecord) -> None:
        """The chain no longer waits for this image. Its outcome is ours when it is the one the
        job carries, or a document signed for an earlier attempt at it (a transaction that
        outlived a reorg); anything else came from another oracle or a cancellation."""
        if record.status == Status.CLASSIFIED and record.result_hash != job.result_hash:
            document = await self.jobs.signed_document(job.image_id, record.result_hash)
            if document is not None and await self.jobs.adopt(job, document, record.result_hash, None):
                log.warning("image %s: the chain holds an earlier attempt's document; adopted", job.image_id)
                self.finished([job])
                await self.check({job.image_id: record.result_hash})
                return
        elif (record.status == Status.CLASSIFIED) or (
            record.status == Status.FAILED and job.outcome == Outcome.FAILURE
        ):
            block = await self.chain.mined_in(job.submit_tx) if job.submit_tx else None
            if (await self.confirm([job], block, None))[0]:
                self.finished([job])
                if record.status == Status.CLASSIFIED:
                    await self.check({job.image_id: record.result_hash})
            return
        await self.supersede(job, f"on chain: {record.status.name.lower()}", OPEN_STATES)

    async def confirm(
        self, jobs: Sequence[Job], block: int | None, tx: str | None
    ) -> tuple[list[str], list[str]]:
        """Records that the chain settled `jobs` in `block`, then looks again: a reorg between
        the receipt and this write, above the last head the listener saw, changed nothing the
        listener would notice. Jobs whose transaction left `block` go out again. Returns the
        jobs confirmed and those sent again."""
        written = await self.jobs.confirmed(jobs, block, tx)
        lost: list[str] = []
        if block is not None:
            settled = [
                (job, sent, block)
                for job in jobs
                if job.image_id in written and (sent := tx or job.submit_tx) is not None
            ]
            lost = await unsettle_moved(self.chain, self.jobs, settled)
        for image_id in lost:
            self.lanes.submit.put(image_id)
        if lost:
            log.warning("%d settlement(s) in block %s left the chain: sending again", len(lost), block)
            self.metrics.jobs.labels("reorged").inc(len(lost))
        return [image_id for image_id in written if image_id not in lost], lost

    async def check(self, on_chain: Mapping[str, str]) -> None:
        """The invariant, checked on what was just written: every job confirmed with a result
        stores the document whose hash the chain holds. Should it ever break, it is counted."""
        if not on_chain:
            return
        for image_id, document in (await self.jobs.documents(list(on_chain))).items():
            if document is None or "0x" + commitment(document).hex() != on_chain[image_id]:
                self.metrics.invariant_violations.inc()
                log.error(
                    "invariant broken: image %s's stored document does not hash to %s",
                    image_id,
                    on_chain[image_id],
                )

    def finished(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            self.metrics.jobs.labels(job.outcome or "unknown").inc()
            self.metrics.latency.observe(time.time() - job.created_at.replace(tzinfo=UTC).timestamp())

    async def supersede(self, job: Job, why: str, states: Sequence[JobState]) -> None:
        if await self.jobs.supersede(job, why, states):
            self.metrics.jobs.labels("superseded").inc()
        else:
            self.metrics.stale_writes.labels("superseded").inc()
