"""The oracle daemon: listen → fetch → classify → submit, joined by bounded asyncio queues.

Every job's state lives in SQLite and changes before the next stage sees it, so a crash at any
point resumes (see `recover`) without losing or duplicating work; the chain stays the source of
truth and is re-checked before anything is sent.
"""

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC
from typing import Any

from PIL import Image
from sqlalchemy import select, update

from oracle.chain.reasons import FailureReason
from oracle.chain.registry import ChainError, Registration, Registry, Status
from oracle.chain.submitter import Submitter
from oracle.document import ResultDocument, new_salt
from oracle.errors import HistochainError
from oracle.imaging import ImageRejected, decode
from oracle.ipfs.errors import IpfsError
from oracle.ipfs.fetch import GatewayFetcher
from oracle.metrics import Metrics, metrics_app
from oracle.ml.catalog import ModelCatalog
from oracle.settings import Settings
from oracle.store.db import Database
from oracle.store.models import Checkpoint, Job, JobState, Outcome

log = logging.getLogger("histochain.oracle")

LISTENER = "image-registered"
WS_RETRY = 30.0
READY_STATES = (JobState.CLASSIFIED, JobState.FAILED)


@dataclass(frozen=True)
class Decoded:
    """A verified, decoded image on its way to the classifier. Only memory holds it: the job stays
    queued in SQLite, so a crash re-fetches; `block_hash` lets the classifier drop an image whose
    registration a reorg has since replaced."""

    image_id: str
    block_hash: str
    image: Image.Image
    content_sha256: str


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


async def _gather_batch(queue: "asyncio.Queue[Any]", first: Any, size: int, wait: float) -> list[Any]:
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
        ws_url: str | None = None,
    ) -> None:
        self.db, self.registry, self.submitter = db, registry, submitter
        self.fetcher, self.catalog, self.tuning = fetcher, catalog, tuning
        self.ws_url = ws_url
        self.fetch_q: asyncio.Queue[str] = asyncio.Queue(maxsize=256)
        self.classify_q: asyncio.Queue[Decoded] = asyncio.Queue(maxsize=64)
        self.submit_q: asyncio.Queue[str] = asyncio.Queue(maxsize=1024)
        self.metrics = Metrics({"fetch": self.fetch_q, "classify": self.classify_q, "submit": self.submit_q})
        self.deployment = registry.deployment
        self.oracle_address = submitter.account.address
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
        workers += [
            asyncio.create_task(self._guard(f"fetch-{i}", self.fetch_loop, stop))
            for i in range(self.tuning.fetch_concurrency)
        ]
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
        async with self.db.transaction() as session:
            jobs = (
                await session.scalars(
                    select(Job).where(Job.state.not_in([JobState.CONFIRMED, JobState.SUPERSEDED]))
                )
            ).all()
        for job in jobs:
            if job.state == JobState.QUEUED:
                self.fetch_q.put_nowait(job.image_id)
            else:
                self.submit_q.put_nowait(job.image_id)
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
                await self._poll_once()
                self.metrics.wakeups.labels("poll").inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tuning.poll_interval)

    async def _follow_websocket(self, stop: asyncio.Event) -> None:
        from web3 import AsyncWeb3, WebSocketProvider

        async with AsyncWeb3(WebSocketProvider(self.ws_url)) as w3:
            await w3.eth.subscribe("newHeads")
            await self._poll_once()  # catch up before following
            heads = w3.socket.process_subscriptions()
            while not stop.is_set():
                try:
                    await asyncio.wait_for(anext(heads), self.tuning.poll_interval * 10)
                    self.metrics.wakeups.labels("websocket").inc()
                except TimeoutError:
                    self.metrics.wakeups.labels("idle").inc()
                await self._poll_once()

    async def _poll_once(self) -> None:
        head = await self.registry.w3.eth.block_number
        safe = head - self.tuning.confirmations
        checkpoint = await self._checkpoint()
        if checkpoint.block_hash and checkpoint.block_number <= safe:  # "": not recorded yet
            canonical = await self.registry.block_hash(checkpoint.block_number)
            if canonical != checkpoint.block_hash:
                await self._rewind(checkpoint.block_number)
                checkpoint = await self._checkpoint()
        start = checkpoint.block_number + 1
        while start <= safe:
            end = min(safe, start + self.tuning.log_chunk_blocks - 1)
            registrations = await self.registry.registrations(start, end)
            end_hash = await self.registry.block_hash(end)
            new = await self._record(registrations, end, end_hash)
            for image_id in new:
                await self.fetch_q.put(image_id)
            start = end + 1

    async def _checkpoint(self) -> Checkpoint:
        async with self.db.transaction() as session:
            checkpoint = await session.get(Checkpoint, LISTENER)
            if checkpoint is None:
                checkpoint = Checkpoint(name=LISTENER, block_number=self.deployment.block - 1, block_hash="")
                session.add(checkpoint)
            return checkpoint

    async def _record(self, registrations: list[Registration], end: int, end_hash: str) -> list[str]:
        """Jobs for new registrations and the checkpoint move in one transaction. A registration
        seen again in another block (re-registered after a reorg) restarts its job from scratch."""
        queued = []
        async with self.db.transaction() as session:
            ids = [r.image_id for r in registrations]
            stored = await session.scalars(select(Job).where(Job.image_id.in_(ids)))
            known = {job.image_id: job for job in stored}
            for r in registrations:
                job = known.get(r.image_id)
                if job is not None and job.block_hash == r.block_hash:
                    continue
                if job is not None:
                    await session.delete(job)
                    await session.flush()
                known[r.image_id] = Job(
                    image_id=r.image_id,
                    cid=r.cid,
                    owner=r.owner,
                    model_id=r.model_id,
                    block_number=r.block_number,
                    block_hash=r.block_hash,
                    registration_tx=r.transaction,
                    state=JobState.QUEUED,
                )
                session.add(known[r.image_id])
                queued.append(r.image_id)
            await session.execute(
                update(Checkpoint)
                .where(Checkpoint.name == LISTENER)
                .values(block_number=end, block_hash=end_hash)
            )
        return queued

    async def _rewind(self, block: int) -> None:
        """The checkpoint block was reorganised away: move the checkpoint back `reorg_depth`
        blocks and rescan. Jobs whose registration block is no longer canonical are superseded;
        the rescan records afresh every registration that reappears in a canonical block (and the
        result the reorg erased is computed and sent again)."""
        back_to = max(self.deployment.block - 1, block - self.tuning.reorg_depth)
        log.warning("reorg below block %d: rescanning from %d", block, back_to + 1)
        async with self.db.transaction() as session:
            recent = (await session.scalars(select(Job).where(Job.block_number > back_to))).all()
        orphaned = []
        for job in recent:
            if await self.registry.block_hash_or_none(job.block_number) != job.block_hash:
                orphaned.append(job.image_id)
        async with self.db.transaction() as session:
            if orphaned:
                await session.execute(
                    update(Job)
                    .where(Job.image_id.in_(orphaned))
                    .values(
                        state=JobState.QUEUED, outcome=None, document=None, result_hash=None, submit_tx=None
                    )
                )
            await session.execute(
                update(Checkpoint)
                .where(Checkpoint.name == LISTENER)
                .values(block_number=back_to, block_hash="")
            )
        self.metrics.jobs.labels("reorged").inc(len(orphaned))

    # ------------------------------------------------------------------ fetch

    async def fetch_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            image_id = await self.fetch_q.get()
            try:
                await self._fetch(image_id)
            except Exception as exc:  # noqa: BLE001 - the job waits and retries, the daemon goes on
                await self._retry_later(self.fetch_q, [image_id], "fetch", exc)

    async def _fetch(self, image_id: str) -> None:
        async with self.db.transaction() as session:
            job = await session.get(Job, image_id)
        if job is None or job.state != JobState.QUEUED:
            return
        if not await self._still_pending(job):
            return
        if job.model_id not in self.catalog:
            await self._fail(job, FailureReason.MODEL_UNAVAILABLE, f"no checkpoint for model {job.model_id}")
            return
        try:
            fetched = await self.fetcher.fetch(job.cid)
            image, digest = await asyncio.to_thread(self._decode, fetched.data)
        except (IpfsError, ImageRejected) as exc:
            await self._fail(job, exc.reason, str(exc))
            return
        await self.classify_q.put(Decoded(image_id, job.block_hash, image, digest))

    def _decode(self, data: bytes) -> tuple[Image.Image, str]:
        """In a worker thread: the stage's CPU work stays off the event loop."""
        return decode(data, self.tuning.max_image_pixels), hashlib.sha256(data).hexdigest()

    async def _still_pending(self, job: Job) -> bool:
        """The chain decides: not pending (another oracle, a cancel) or gone (a reorg) → superseded."""
        status = await self.registry.status(job.image_id)
        if status == Status.PENDING:
            return True
        await self._supersede(job.image_id, f"on chain: {status.name.lower()}")
        return False

    async def _fail(self, job: Job, reason: FailureReason, error: str) -> None:
        log.info("image %s fails: %s (%s)", job.image_id, reason.name, error)
        await self._set(
            job.image_id,
            state=JobState.FAILED,
            outcome=Outcome.FAILURE,
            failure_reason=int(reason),
            error=error,
        )
        await self.submit_q.put(job.image_id)

    # ------------------------------------------------------------------ classify

    async def classify_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            first = await self.classify_q.get()
            batch = await _gather_batch(
                self.classify_q, first, self.tuning.classify_batch, self.tuning.classify_wait
            )
            jobs = {
                job.image_id: job for job in await self._load([d.image_id for d in batch], [JobState.QUEUED])
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
                except Exception as exc:  # noqa: BLE001 - re-fetch and retry, the daemon goes on
                    await self._retry_later(self.fetch_q, [job.image_id for job, _ in items], "classify", exc)

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
        classified: dict[str, dict[str, Any]] = {}
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
            classified[job.image_id] = {
                "state": JobState.CLASSIFIED,
                "outcome": Outcome.RESULT,
                "content_sha256": decoded.content_sha256,
                "document": document.canonical_dict(),
                "result_hash": "0x" + document.result_hash.hex(),
            }
        await self._set_many(classified)
        for image_id in classified:
            await self.submit_q.put(image_id)

    # ------------------------------------------------------------------ submit

    async def submit_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            first = await self.submit_q.get()
            batch = await _gather_batch(
                self.submit_q, first, self.tuning.submit_batch, self.tuning.submit_wait
            )
            try:
                await self._submit(list(dict.fromkeys(batch)))
            except (ChainError, OSError) as exc:
                await self._retry_later(self.submit_q, batch, "submit", exc)

    async def _submit(self, image_ids: list[str]) -> None:
        jobs = await self._load(image_ids, [*READY_STATES, JobState.SUBMITTED])
        results: list[Job] = []
        failures: list[Job] = []
        records = await self.registry.images([j.image_id for j in jobs])
        for job, record in zip(jobs, records, strict=True):
            if record.status == Status.PENDING:
                (results if job.outcome == Outcome.RESULT else failures).append(job)
            elif self._ours(job, record.status, record.result_hash):
                await self._confirmed([job], None)
            else:
                await self._supersede(job.image_id, f"on chain: {record.status.name.lower()}")
        if results:
            pairs = [(j.image_id, j.result_hash or "") for j in results]
            sent = await self.submitter.post_results(pairs, self._submitting([j.image_id for j in results]))
            self._count(sent.gas_used)
            await self._confirmed(
                [j for j in results if j.image_id in sent.posted], sent.block_number, sent.tx_hash
            )
            for job in results:
                if job.image_id not in sent.posted:
                    await self._supersede(job.image_id, "skipped: no longer pending")
        for job in failures:
            sent = await self.submitter.report_failure(
                job.image_id, job.failure_reason or 0, self._submitting([job.image_id])
            )
            self._count(sent.gas_used)
            await self._confirmed([job], sent.block_number, sent.tx_hash)

    @staticmethod
    def _ours(job: Job, status: Status, on_chain_hash: str) -> bool:
        """Did our own earlier transaction settle this image (e.g. sent just before a crash)?"""
        if status == Status.CLASSIFIED:
            return on_chain_hash == job.result_hash
        return status == Status.FAILED and job.outcome == Outcome.FAILURE

    def _submitting(self, image_ids: list[str]) -> Callable[[str], Awaitable[None]]:
        async def record(tx_hash: str) -> None:
            async with self.db.transaction() as session:
                await session.execute(
                    update(Job)
                    .where(Job.image_id.in_(image_ids))
                    .values(state=JobState.SUBMITTED, submit_tx=tx_hash, attempts=Job.attempts + 1)
                )

        return record

    def _count(self, gas: int) -> None:
        self.metrics.transactions.inc()
        self.metrics.gas.inc(gas)

    async def _confirmed(self, jobs: list[Job], block: int | None, tx: str | None = None) -> None:
        """One transaction for all the jobs one on-chain transaction settled."""
        values = {"state": JobState.CONFIRMED, "confirmed_block": block, "submit_tx": tx}
        await self._set_many(dict.fromkeys([job.image_id for job in jobs], values))
        for job in jobs:
            self.metrics.jobs.labels(job.outcome or "unknown").inc()
            self.metrics.latency.observe(time.time() - job.created_at.replace(tzinfo=UTC).timestamp())

    async def _retry_later(
        self, queue: "asyncio.Queue[str]", image_ids: list[str], stage: str, exc: Exception
    ) -> None:
        log.warning(
            "%s of %d job(s) failed, retrying: %s: %s", stage, len(image_ids), type(exc).__name__, exc
        )
        self.metrics.retries.labels(stage).inc(len(image_ids))
        with contextlib.suppress(Exception):
            async with self.db.transaction() as session:
                await session.execute(
                    update(Job)
                    .where(Job.image_id.in_(image_ids))
                    .values(attempts=Job.attempts + 1, error=str(exc))
                )
        await asyncio.sleep(self.tuning.retry_delay)
        for image_id in image_ids:
            await queue.put(image_id)

    # ------------------------------------------------------------------ store

    async def _load(self, image_ids: list[str], states: list[JobState]) -> list[Job]:
        async with self.db.transaction() as session:
            query = select(Job).where(Job.image_id.in_(image_ids), Job.state.in_(states))
            return list((await session.scalars(query)).all())

    async def _supersede(self, image_id: str, why: str) -> None:
        await self._set(image_id, state=JobState.SUPERSEDED, error=why)
        self.metrics.jobs.labels("superseded").inc()

    async def _set(self, image_id: str, **values: Any) -> None:
        await self._set_many({image_id: values})

    async def _set_many(self, changes: dict[str, dict[str, Any]]) -> None:
        """Each job's new values, all in one transaction (one commit for a whole batch)."""
        if not changes:
            return
        async with self.db.transaction() as session:
            for image_id, values in changes.items():
                await session.execute(update(Job).where(Job.image_id == image_id).values(**values))


async def run_daemon(settings: Settings, stop: asyncio.Event) -> None:
    """Builds every stage from settings and runs until `stop` is set."""
    import aiohttp
    import torch
    from aiohttp import web
    from web3 import AsyncWeb3
    from web3.types import RPCEndpoint

    from oracle.chain.deployment import Deployment
    from oracle.chain.rpc import FallbackHTTPProvider
    from oracle.ml.inference import resolve_device
    from oracle.signer import load_signer

    deployment = Deployment.load(settings.deployment_path)
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
            fetcher = GatewayFetcher(
                http,
                settings.gateways,
                settings.max_image_bytes,
                settings.fetch_timeout,
                settings.fetch_attempts,
            )
            oracle = Oracle(
                db, registry, Submitter(registry, account), fetcher, catalog, tuning, settings.websocket_url
            )
            runner = web.AppRunner(metrics_app(oracle.metrics))
            await runner.setup()
            await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
            log.info(
                "oracle %s on chain %d, registry %s, %d model(s)",
                account.address,
                deployment.chain_id,
                deployment.address,
                len(catalog.cards),
            )
            try:
                await oracle.run(stop)
            finally:
                await runner.cleanup()
    finally:
        await db.close()
        torch.set_num_threads(caller_threads)
