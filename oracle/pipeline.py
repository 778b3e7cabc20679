"""The oracle daemon: listen → fetch → classify → submit, joined by bounded asyncio queues.

Every job's state lives in SQLite and changes before the next stage sees it, so a crash at any
point resumes (see `recover`) without losing or duplicating work; the chain stays the source of
truth and is re-checked before anything is sent. Job rows change only through `JobRepository`,
whose writes are compare-and-set: a stage acting on what it read before a reorg changes nothing.
"""

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC
from typing import Any

from PIL import Image
from pyrage import x25519

from oracle.chain.reasons import FailureReason
from oracle.chain.registry import ChainError, ImageRecord, Registry, Status
from oracle.chain.submitter import Sent, Submitter
from oracle.crypto.envelope import EnvelopeError
from oracle.daemon.jobs import OPEN_STATES, SENDABLE_STATES, Classified, JobRepository, StaleJobs
from oracle.daemon.queues import ByteBudget, DelayedQueue
from oracle.daemon.sandbox import Sandbox, Strike
from oracle.document import ResultDocument, new_salt
from oracle.errors import ConfigError, HistochainError
from oracle.imaging import ImageRejected
from oracle.ipfs.errors import IpfsError
from oracle.ipfs.fetch import Attempt, GatewayFetcher
from oracle.jcs import commitment
from oracle.metrics import Metrics, Waiting, metrics_app
from oracle.ml.catalog import ModelCatalog
from oracle.settings import Settings
from oracle.store.db import Database
from oracle.store.models import Checkpoint, Job, JobState, Outcome

log = logging.getLogger("histochain.oracle")

LISTENER = "image-registered"
WS_RETRY = 30.0


@dataclass(frozen=True)
class Decoded:
    """A verified, decrypted, decoded image on its way to the classifier. Only memory holds it: the
    job stays queued in SQLite, so a crash re-fetches; `block_hash` lets the classifier drop an
    image whose registration a reorg has since replaced."""

    image_id: str
    block_hash: str
    image: Image.Image
    content_sha256: str
    nbytes: int


@dataclass
class Tuning:
    confirmations: int = 1
    log_chunk_blocks: int = 2000
    poll_interval: float = 1.0
    reorg_depth: int = 64
    fetch_concurrency: int = 8
    classify_batch: int = 16
    classify_wait: float = 0.05
    submit_batch: int = 32
    submit_wait: float = 0.5
    max_image_pixels: int = 50_000_000
    retry_delay: float = 2.0
    accept_plaintext: bool = False
    fetch_deadline: float = 60.0
    unreachable_grace: float = 600.0
    retry_cap: float = 120.0
    max_attempts: int = 5
    slow_lane_workers: int = 2
    owner_share: int = 2
    max_strikes: int = 2
    decoded_budget: int = 512 << 20


async def _gather_batch(
    queue: "asyncio.Queue[Any] | DelayedQueue[Any]", first: Any, size: int, wait: float
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


class Oracle:
    def __init__(
        self,
        db: Database,
        registry: Registry,
        submitter: Submitter,
        fetcher: GatewayFetcher,
        catalog: ModelCatalog,
        tuning: Tuning,
        sandbox: Sandbox,
        ws_url: str | None = None,
    ) -> None:
        self.registry, self.submitter, self.sandbox = registry, submitter, sandbox
        self.fetcher, self.catalog, self.tuning = fetcher, catalog, tuning
        self.ws_url = ws_url
        self.jobs = JobRepository(db, LISTENER, registry.deployment.block)
        # Retries wait in these queues, never in a worker; slow CIDs get a lane of their own.
        self.fetch_q: DelayedQueue[str] = DelayedQueue()
        self.slow_q: DelayedQueue[str] = DelayedQueue()
        self.classify_q: asyncio.Queue[Decoded] = asyncio.Queue()
        self.budget = ByteBudget(tuning.decoded_budget)  # decoded images are bounded in bytes
        self.submit_q: DelayedQueue[str] = DelayedQueue()
        self.tries: Counter[tuple[str, str]] = Counter()  # (stage, imageId): tries this run
        self.slow: set[str] = set()
        self.inflight: Counter[str] = Counter()  # owner: fetches under way
        self.parked: dict[str, deque[str]] = {}  # owner: images waiting for the owner's share
        queues: dict[str, Waiting] = {
            "fetch": self.fetch_q,
            "slow": self.slow_q,
            "classify": self.classify_q,
            "submit": self.submit_q,
        }
        self.metrics = Metrics(queues)
        self.deployment = registry.deployment
        self.oracle_address = submitter.account.address
        self._head_hash = ""  # the last head recorded, to write it only when it changes
        # Inference gets a thread of its own: in the shared pool it would queue behind decoding.
        self.inference = ThreadPoolExecutor(1, thread_name_prefix="classify")

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; then stops taking work and leaves the rest checkpointed in SQLite."""
        await self.registry.check_chain()
        await self.recover()
        workers = [
            asyncio.create_task(self._guard("listen", self.listen, stop)),
            asyncio.create_task(self._guard("classify", self.classify_loop, stop)),
            asyncio.create_task(self._guard("submit", self.submit_loop, stop)),
        ]
        slow = min(self.tuning.slow_lane_workers, self.tuning.fetch_concurrency - 1)
        for i in range(self.tuning.fetch_concurrency):
            lane = functools.partial(self.fetch_loop, queue=self.slow_q if i < slow else self.fetch_q)
            workers.append(asyncio.create_task(self._guard(f"fetch-{i}", lane, stop)))
        await stop.wait()
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self.inference.shutdown(cancel_futures=True)
        log.info("stopped")

    async def _guard(
        self, name: str, loop: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        """A stage that fails unexpectedly is logged and restarted; the daemon keeps going."""
        while not stop.is_set():
            try:
                await loop(stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stage %s failed; restarting it", name)
                await asyncio.sleep(self.tuning.retry_delay)

    async def recover(self) -> None:
        """Re-queues every unfinished job from SQLite after a start or a crash."""
        jobs = await self.jobs.unfinished()
        for job in jobs:
            (self.fetch_q if job.state == JobState.QUEUED else self.submit_q).put(job.image_id)
        if jobs:
            log.info("recovered %d unfinished jobs", len(jobs))

    # ------------------------------------------------------------------ listen

    async def listen(self, stop: asyncio.Event) -> None:
        """Follows new heads over a WebSocket subscription when one is configured; polls otherwise,
        and meanwhile whenever the socket fails (retried every `WS_RETRY` seconds)."""
        while not stop.is_set():
            if self.ws_url:
                try:
                    await self._follow_websocket(stop)
                except Exception as exc:  # noqa: BLE001 - any socket failure falls back to polling
                    log.warning("websocket follow failed, polling: %s: %s", type(exc).__name__, exc)
            deadline = time.monotonic() + (WS_RETRY if self.ws_url else float("inf"))
            while not stop.is_set() and time.monotonic() < deadline:
                await self.poll_once()
                self.metrics.wakeups.labels("poll").inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tuning.poll_interval)

    async def _follow_websocket(self, stop: asyncio.Event) -> None:
        from web3 import AsyncWeb3, WebSocketProvider

        async with AsyncWeb3(WebSocketProvider(self.ws_url)) as w3:
            await w3.eth.subscribe("newHeads")
            await self.poll_once()  # catch up before following
            heads = w3.socket.process_subscriptions()
            while not stop.is_set():
                try:
                    await asyncio.wait_for(anext(heads), self.tuning.poll_interval * 10)
                    self.metrics.wakeups.labels("websocket").inc()
                except TimeoutError:
                    self.metrics.wakeups.labels("idle").inc()
                await self.poll_once()

    async def poll_once(self) -> None:
        """Turns the logs of every block up to the safe head into jobs, chunk by chunk."""
        head = await self.registry.w3.eth.block_number
        safe = head - self.tuning.confirmations
        checkpoint = await self.jobs.checkpoint()
        reorged = await self._reorged(checkpoint, safe)
        if reorged is not None:
            await self._rewind(reorged, checkpoint.block_number)
            checkpoint = await self.jobs.checkpoint()
        start = checkpoint.block_number + 1
        while start <= safe:
            end = min(safe, start + self.tuning.log_chunk_blocks - 1)
            end_hash = await self.registry.block_hash_or_none(end)
            registrations = await self.registry.registrations(start, end)
            if end_hash is None or end_hash != await self.registry.block_hash_or_none(end):
                return  # the chain changed while its logs were read: they may be from either side
            for image_id in await self.jobs.record(registrations, end, end_hash):
                self.fetch_q.put(image_id)
            start = end + 1
        head_hash = await self.registry.block_hash_or_none(head)
        if head_hash is not None and head_hash != self._head_hash:
            await self.jobs.saw_head(head, head_hash)
            self._head_hash = head_hash

    async def _reorged(self, checkpoint: Checkpoint, safe: int) -> int | None:
        """The block a reorg was seen at: the checkpoint's (registrations may have changed), or the
        last head seen (the oracle's own transactions above the checkpoint may be gone)."""
        recorded = checkpoint.block_hash and checkpoint.block_number <= safe  # "": not recorded yet
        if recorded and await self.registry.block_hash(checkpoint.block_number) != checkpoint.block_hash:
            return checkpoint.block_number
        head = await self.jobs.head()
        if head.block_hash and await self.registry.block_hash_or_none(head.block_number) != head.block_hash:
            return head.block_number
        return None

    async def _rewind(self, block: int, checkpoint: int) -> None:
        """A reorg replaced `block`: move the checkpoint back `reorg_depth` blocks below it and
        rescan. A job whose registration block is gone is over (a registration made again in
        the new chain is a new job); a job whose registration stands but whose settling
        transaction is gone goes out again with the same document."""
        back_to = max(self.deployment.block - 1, min(checkpoint, block - self.tuning.reorg_depth))
        log.warning("reorg below block %d: rescanning from %d", block, back_to + 1)
        canonical: dict[int, str | None] = {}

        async def is_canonical(number: int, block_hash: str) -> bool:
            if number not in canonical:
                canonical[number] = await self.registry.block_hash_or_none(number)
            return canonical[number] == block_hash

        erased, resend = 0, []
        for job in await self.jobs.since(back_to):
            if job.state == JobState.SUPERSEDED:
                continue
            if job.block_number > back_to and not await is_canonical(job.block_number, job.block_hash):
                erased += await self.jobs.erased(job)
            elif (
                job.state == JobState.CONFIRMED
                and job.submit_tx is not None
                and await self.registry.mined_in(job.submit_tx) is None
                and await self.jobs.unsettled(job)
            ):
                resend.append(job.image_id)
        await self.jobs.rewind(back_to)
        self._head_hash = ""
        for image_id in resend:
            self.submit_q.put(image_id)
        self.metrics.jobs.labels("reorged").inc(erased + len(resend))

    # ------------------------------------------------------------------ fetch

    async def fetch_loop(self, stop: asyncio.Event, queue: DelayedQueue[str]) -> None:
        while not stop.is_set():
            image_id = await queue.get()
            try:
                await self.fetch(image_id)
            except Exception as exc:  # noqa: BLE001 - our own fault (database, RPC): the job tries again
                await self._later(self._lane(image_id), [image_id], "fetch", exc)

    def _lane(self, image_id: str) -> DelayedQueue[str]:
        return self.slow_q if image_id in self.slow else self.fetch_q

    async def fetch(self, image_id: str) -> None:
        """One try at a queued job, within its owner's share of the fetch workers."""
        job = await self.jobs.get(image_id)
        if job is None or job.state != JobState.QUEUED:
            return
        if self.inflight[job.owner] >= self.tuning.owner_share:
            self.parked.setdefault(job.owner, deque()).append(image_id)
            return
        self.inflight[job.owner] += 1
        try:
            await self._fetch(job)
        finally:
            self.inflight[job.owner] -= 1
            waiting = self.parked.get(job.owner)
            if waiting:
                parked = waiting.popleft()
                self._lane(parked).put(parked)
                if not waiting:
                    del self.parked[job.owner]

    async def _fetch(self, job: Job) -> None:
        if not await self._still_pending(job):
            return
        if job.model_id not in self.catalog:
            await self._fail(job, FailureReason.MODEL_UNAVAILABLE, f"no checkpoint for model {job.model_id}")
            return
        try:
            attempt = await self.fetcher.attempt(job.cid, time.monotonic() + self.tuning.fetch_deadline)
        except IpfsError as exc:  # a CID this oracle cannot verify
            await self._fail(job, exc.reason, str(exc))
            return
        except Strike as strike:
            await self._struck(job, "verify", strike)
            return
        if attempt.verdict is not None:
            await self._fail(job, attempt.verdict.reason, str(attempt.verdict))
            return
        if attempt.data is None:
            await self._unreachable(job, attempt)
            return
        deployment, tuning = self.deployment, self.tuning
        try:
            opened = await self.sandbox.open(
                attempt.data,
                job.owner,
                deployment.chain_id,
                deployment.address,
                tuning.accept_plaintext,
                tuning.max_image_pixels,
            )
        except (EnvelopeError, ImageRejected) as exc:
            await self._fail(job, exc.reason, str(exc))
            return
        except Strike as strike:
            await self._struck(job, "open", strike)
            return
        size = opened.pixels.nbytes
        await self.budget.acquire(size)
        image = Image.fromarray(opened.pixels, "RGB")
        await self.classify_q.put(Decoded(job.image_id, job.block_hash, image, opened.content_sha256, size))

    async def _unreachable(self, job: Job, attempt: Attempt) -> None:
        """No gateway gave the content yet: a patient's upload may still be propagating, so the
        image fails only after the grace period, tried again at growing intervals until then."""
        waited = time.time() - job.created_at.replace(tzinfo=UTC).timestamp()
        grace = self.tuning.unreachable_grace
        if waited >= grace:
            error = f"no gateway gave it in {waited:.0f} s ({'; '.join(attempt.failures)})"
            await self._fail(job, FailureReason.CONTENT_UNREACHABLE, error)
            return
        if attempt.slow:
            self.slow.add(job.image_id)
        self.tries["fetch", job.image_id] += 1
        self._lane(job.image_id).put(job.image_id, min(self._backoff("fetch", job.image_id), grace - waited))

    def _backoff(self, stage: str, image_id: str) -> float:
        tries = max(1, self.tries[stage, image_id])
        return float(min(self.tuning.retry_cap, self.tuning.retry_delay * 2 ** (tries - 1)))

    async def _struck(self, job: Job, stage: str, strike: Strike) -> None:
        """The sandbox killed a worker over this image; past `max_strikes`, that is its verdict."""
        count = await self.jobs.strike(job.image_id)
        self.metrics.strikes.labels(stage).inc()
        log.warning("image %s: sandbox %s worker killed (%s), strike %d", job.image_id, stage, strike, count)
        if count >= self.tuning.max_strikes:
            reason = {
                ("verify", "time"): FailureReason.CONTENT_MISMATCH,
                ("verify", "crash"): FailureReason.TOO_LARGE,
                ("open", "time"): FailureReason.UNSUPPORTED_IMAGE,
                ("open", "crash"): FailureReason.TOO_LARGE,
            }[stage, strike.kind]
            await self._fail(job, reason, f"{stage}: the sandbox killed its worker {count} times ({strike})")
            return
        self.slow.add(job.image_id)
        self.slow_q.put(job.image_id, self.tuning.retry_delay)

    async def _still_pending(self, job: Job) -> bool:
        """The chain decides: anything but pending settles the job (see `_settle`)."""
        if await self.registry.status(job.image_id) == Status.PENDING:
            return True
        await self._settle(job, await self.registry.image(job.image_id))
        return False

    async def _fail(self, job: Job, reason: FailureReason, error: str) -> None:
        self._forget(job.image_id)
        if not await self.jobs.failed(job, int(reason), error):
            self.metrics.stale_writes.labels("failed").inc()
            return
        log.info("image %s fails: %s (%s)", job.image_id, reason.name, error)
        self.submit_q.put(job.image_id)

    def _forget(self, image_id: str) -> None:
        """What this run kept about an image while it was being fetched and classified."""
        self.slow.discard(image_id)
        for stage in ("fetch", "classify"):
            self.tries.pop((stage, image_id), None)

    # ------------------------------------------------------------------ classify

    async def classify_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            first = await self.classify_q.get()
            batch = await _gather_batch(
                self.classify_q, first, self.tuning.classify_batch, self.tuning.classify_wait
            )
            try:
                await self.classify_batch(batch)
            finally:
                await self.budget.release(sum(decoded.nbytes for decoded in batch))

    async def classify_batch(self, batch: list[Decoded]) -> None:
        """One forward pass per model over the images whose jobs still wait for exactly them."""
        jobs = {
            job.image_id: job for job in await self.jobs.load([d.image_id for d in batch], [JobState.QUEUED])
        }
        by_model: dict[str, list[tuple[Job, Decoded]]] = {}
        for decoded in batch:
            job = jobs.get(decoded.image_id)
            if job is not None and job.block_hash == decoded.block_hash:
                del jobs[decoded.image_id]  # a duplicate later in the batch is dropped
                by_model.setdefault(job.model_id, []).append((job, decoded))
        for model_id, items in by_model.items():
            try:
                await self._classify(model_id, items)
            except Exception as exc:  # noqa: BLE001 - re-fetch and retry, up to max_attempts
                again = []
                for job, _ in items:
                    if self.tries["classify", job.image_id] + 1 < self.tuning.max_attempts:
                        again.append(job.image_id)
                        continue
                    error = (
                        f"classified in vain {self.tuning.max_attempts} times: {type(exc).__name__}: {exc}"
                    )
                    await self._fail(job, FailureReason.MODEL_ERROR, error)
                await self._later(self.fetch_q, again, "classify", exc)

    async def _classify(self, model_id: str, items: list[tuple[Job, Decoded]]) -> None:
        try:
            loop = asyncio.get_running_loop()
            predictor = await loop.run_in_executor(self.inference, self.catalog.predictor, model_id)
            probs = await loop.run_in_executor(self.inference, predictor.predict, [d.image for _, d in items])
        except (HistochainError, RuntimeError) as exc:
            for job, _ in items:
                await self._fail(job, FailureReason.MODEL_ERROR, f"{type(exc).__name__}: {exc}")
            return
        card = predictor.card
        classified = []
        for (job, decoded), p in zip(items, probs, strict=True):
            positive = float(p)
            label = card.labels[1] if positive >= card.threshold else card.labels[0]
            document = ResultDocument(
                image_id=job.image_id,
                cid=job.cid,
                content_sha256=decoded.content_sha256,
                model_id=model_id,
                model_name=card.name,
                label=label,
                probabilities={card.labels[0]: 1 - positive, card.labels[1]: positive},
                threshold=card.threshold,
                oracle=self.oracle_address,
                chain_id=self.deployment.chain_id,
                registry=self.deployment.address,
                registration_block=job.block_number,
                salt=new_salt(),
            )
            classified.append(
                Classified(
                    image_id=job.image_id,
                    block_hash=decoded.block_hash,
                    content_sha256=decoded.content_sha256,
                    document=document.canonical_dict(),
                    result_hash="0x" + document.result_hash.hex(),
                )
            )
        written = await self.jobs.classified(classified)
        self.metrics.stale_writes.labels("classified").inc(len(classified) - len(written))
        for image_id in written:
            self._forget(image_id)
            self.submit_q.put(image_id)

    # ------------------------------------------------------------------ submit

    async def submit_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            first = await self.submit_q.get()
            batch = await _gather_batch(
                self.submit_q, first, self.tuning.submit_batch, self.tuning.submit_wait
            )
            image_ids = list(dict.fromkeys(batch))
            try:
                await self.submit(image_ids)
            except Exception as exc:  # noqa: BLE001 - the chain and the rows are read again before a resend
                await self._later(self.submit_q, image_ids, "submit", exc)

    async def submit(self, image_ids: list[str]) -> None:
        """Settles what the chain already settled; sends the rest (results in one transaction)."""
        jobs = await self.jobs.load(image_ids, SENDABLE_STATES)
        records = await self.registry.images([j.image_id for j in jobs])
        pending: list[Job] = []
        for job, record in zip(jobs, records, strict=True):
            if record.status == Status.PENDING:
                pending.append(job)
            else:
                await self._settle(job, record)
        pending = await self._registered(pending)
        results = [j for j in pending if j.outcome == Outcome.RESULT]
        failures = [j for j in pending if j.outcome != Outcome.RESULT]
        if results:
            pairs = [(j.image_id, j.result_hash or "") for j in results]
            await self._send(results, self.submitter.post_results(pairs, self._signing(results)))
        if failures:
            reasons = [(j.image_id, j.failure_reason or 0) for j in failures]
            await self._send(failures, self.submitter.report_failures(reasons, self._signing(failures)))

    async def _registered(self, jobs: list[Job]) -> list[Job]:
        """Of the jobs sent before (a receipt lost, a transaction dropped: reorg territory), those
        whose registration block is still canonical; the listener settles the others."""
        blocks = {job.block_number for job in jobs if job.state == JobState.SUBMITTED}
        hashes = dict(
            zip(blocks, await asyncio.gather(*map(self.registry.block_hash_or_none, blocks)), strict=True)
        )
        kept = [
            job
            for job in jobs
            if job.state != JobState.SUBMITTED or hashes[job.block_number] == job.block_hash
        ]
        if len(kept) < len(jobs):
            log.warning(
                "%d job(s) not sent again: their registration block left the chain", len(jobs) - len(kept)
            )
        return kept

    async def _send(self, jobs: list[Job], sending: Awaitable[Sent]) -> None:
        """Awaits one transaction carrying `jobs`' outcomes and records what it settled. Whatever
        it did not settle, or settled for a row that has moved on since, is looked at again."""
        try:
            sent = await sending
        except StaleJobs as exc:  # nothing was broadcast
            self.metrics.stale_writes.labels("signing").inc(len(exc.image_ids))
            for job in jobs:
                if job.image_id not in exc.image_ids:
                    self.submit_q.put(job.image_id)
            return
        self._count(sent.gas_used)
        done = [j for j in jobs if j.image_id in sent.posted or j.image_id in sent.failed]
        written = set(await self.jobs.confirmed(done, sent.block_number, sent.tx_hash))
        self.metrics.stale_writes.labels("confirmed").inc(len(done) - len(written))
        self._finished([j for j in done if j.image_id in written])
        await self._check({i: h for i, h in sent.posted.items() if i in written})
        again = [j.image_id for j in jobs if j.image_id not in written]
        if again and sent.status != 1:
            await self._later(
                self.submit_q, again, "submit", ChainError(f"transaction {sent.tx_hash} reverted")
            )
        elif again:
            for image_id in again:
                self.submit_q.put(image_id)

    async def _settle(self, job: Job, record: ImageRecord) -> None:
        """The chain no longer waits for this image. Its outcome is ours when it is the one the
        job carries, or a document signed for an earlier attempt at it (a transaction that
        outlived a reorg); anything else came from another oracle or a cancellation."""
        if record.status == Status.CLASSIFIED and record.result_hash != job.result_hash:
            document = await self.jobs.signed_document(job.image_id, record.result_hash)
            if document is not None and await self.jobs.adopt(job, document, record.result_hash, None):
                log.warning("image %s: the chain holds an earlier attempt's document; adopted", job.image_id)
                self._finished([job])
                await self._check({job.image_id: record.result_hash})
                return
        elif (record.status == Status.CLASSIFIED) or (
            record.status == Status.FAILED and job.outcome == Outcome.FAILURE
        ):
            block = await self.registry.mined_in(job.submit_tx) if job.submit_tx else None
            if await self.jobs.confirmed([job], block, None):
                self._finished([job])
                if record.status == Status.CLASSIFIED:
                    await self._check({job.image_id: record.result_hash})
            return
        await self._supersede(job, f"on chain: {record.status.name.lower()}", OPEN_STATES)

    async def _check(self, on_chain: Mapping[str, str]) -> None:
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

    def _signing(self, jobs: list[Job]) -> Callable[[str], Awaitable[None]]:
        async def record(tx_hash: str) -> None:
            await self.jobs.signing(jobs, tx_hash)

        return record

    def _count(self, gas: int) -> None:
        self.metrics.transactions.inc()
        self.metrics.gas.inc(gas)

    def _finished(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.metrics.jobs.labels(job.outcome or "unknown").inc()
            self.metrics.latency.observe(time.time() - job.created_at.replace(tzinfo=UTC).timestamp())

    async def _later(
        self, queue: DelayedQueue[str], image_ids: list[str], stage: str, exc: Exception
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
            queue.put(image_id, self._backoff(stage, image_id))

    async def _supersede(self, job: Job, why: str, states: tuple[JobState, ...] | list[JobState]) -> None:
        if await self.jobs.supersede(job, why, states):
            self.metrics.jobs.labels("superseded").inc()
        else:
            self.metrics.stale_writes.labels("superseded").inc()


async def check_key_published(registry: Registry, oracle: str, identity: x25519.Identity) -> None:
    """Patients encrypt to the keys on chain: an oracle whose own key is not there could open
    nothing it is sent, and would only fail every image."""
    from oracle.crypto.keys import public_key

    published = (await registry.encryption_keys()).get(oracle)
    if published != public_key(identity):
        state = "no encryption key" if published is None else "another encryption key"
        raise ConfigError(
            f"the registry holds {state} for oracle {oracle}: publish this oracle's key with "
            "`histochain oracle publish-key` (dev up does it on the dev chain)"
        )


@contextlib.asynccontextmanager
async def assemble(settings: Settings) -> AsyncIterator[Oracle]:
    """Every stage built from settings, and torn down on the way out; `run_daemon` runs them."""
    import aiohttp
    import torch
    from web3 import AsyncWeb3
    from web3.types import RPCEndpoint

    from oracle.chain.deployment import Deployment
    from oracle.chain.rpc import FallbackHTTPProvider
    from oracle.crypto.keys import oracle_identity
    from oracle.ml.inference import resolve_device
    from oracle.signer import load_signer

    deployment = Deployment.load(settings.deployment_path)
    identity = oracle_identity(settings)
    device = resolve_device(settings.device)
    catalog = ModelCatalog(settings.models_path, device)
    tuning = Tuning(
        **{f.name: getattr(settings, f.name) for f in fields(Tuning) if f.name in Settings.model_fields}
    )
    db = Database(settings.database)
    await db.start()
    caller_threads = torch.get_num_threads()  # process-wide: given back on the way out
    if device.type == "cpu":
        # Intra-op threads beyond the cores left over from decoding spin and steal from it.
        torch.set_num_threads(settings.inference_threads)
    try:
        async with aiohttp.ClientSession() as http:
            # web3 validates every eth_call and eth_estimateGas against eth_chainId, asked anew each
            # time unless cached (an endpoint's chain id does not change; check_chain checks it once).
            rpc = FallbackHTTPProvider(
                settings.rpc_endpoints,
                cache_allowed_requests=True,
                cacheable_requests={RPCEndpoint("eth_chainId")},
            )
            for provider in rpc.providers:  # web3's own session opens a connection per request
                await provider.cache_async_session(http)
            w3 = AsyncWeb3(rpc)
            registry = Registry(w3, deployment)
            account = load_signer(settings, await w3.eth.chain_id)
            await check_key_published(registry, account.address, identity)
            sandbox = Sandbox(
                settings.sandbox_workers,
                settings.sandbox_time_limit,
                settings.sandbox_memory_limit,
                str(identity),
            )
            fetcher = GatewayFetcher(
                http, settings.gateways, settings.max_image_bytes, settings.fetch_timeout, sandbox.verify
            )
            try:
                yield Oracle(
                    db,
                    registry,
                    Submitter(registry, account),
                    fetcher,
                    catalog,
                    tuning,
                    sandbox,
                    settings.websocket_url,
                )
            finally:
                sandbox.close()
    finally:
        await db.close()
        torch.set_num_threads(caller_threads)


async def run_daemon(settings: Settings, stop: asyncio.Event) -> None:
    """Builds every stage from settings and runs until `stop` is set."""
    from aiohttp import web

    async with assemble(settings) as oracle:
        runner = web.AppRunner(metrics_app(oracle.metrics))
        await runner.setup()
        await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
        log.info(
            "oracle %s on chain %d, registry %s, %d model(s)",
            oracle.oracle_address,
            oracle.deployment.chain_id,
            oracle.deployment.address,
            len(oracle.catalog.cards),
        )
        try:
            await oracle.run(stop)
        finally:
            await runner.cleanup()
