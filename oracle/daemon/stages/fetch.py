"""Fetch: a queued job's ciphertext from the gateways, verified against its CID, decrypted and
decoded in the sandbox, and handed to the classifier. Untrusted bytes end in a verdict, never a
retry; a CID no gateway gives yet waits in a delayed queue, and one owner holds at most
`owner_share` fetch workers."""

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

from PIL import Image

from oracle.chain.reasons import FailureReason
from oracle.chain.registry import Status
from oracle.crypto.envelope import EnvelopeError
from oracle.daemon.core import Core
from oracle.daemon.ports import Fetcher, Opener, WorkQueue
from oracle.daemon.sandbox import Strike
from oracle.imaging import ImageRejected, InputPolicy
from oracle.ipfs.errors import IpfsError
from oracle.ipfs.fetch import Attempt
from oracle.store.models import Job, JobState

log = logging.getLogger("histochain.oracle")


@dataclass(frozen=True)
class Decoded:
    """A verified, decrypted, decoded image on its way to the classifier. Only memory holds it: the
    job stays queued in the store, so a crash re-fetches; `block_hash` lets the classifier drop
    an image whose registration a reorg has since replaced."""

    image_id: str
    block_hash: str
    image: Image.Image
    content_sha256: str
    nbytes: int
    reply_to: str | None = None  # the owner's age recipient, for what the oracle makes from the image


class FetchStage:
    def __init__(
        self, core: Core, fetcher: Fetcher, opener: Opener, policy: Callable[[str, int], InputPolicy | None]
    ) -> None:
        """`policy(model_id, max_pixels)`: what that model accepts, None for a model not here."""
        self.core, self.fetcher, self.opener, self.policy = core, fetcher, opener, policy
        self.inflight: Counter[str] = Counter()  # owner: fetches under way
        self.parked: dict[str, deque[str]] = {}  # owner: images waiting for the owner's share

    async def loop(self, stop: asyncio.Event, queue: WorkQueue[str]) -> None:
        while not stop.is_set():
            image_id = await queue.get()
            try:
                await self.fetch(image_id)
            except Exception as exc:  # noqa: BLE001 - our own fault (database, RPC): the job tries again
                await self.core.later(self.core.lane(image_id), [image_id], "fetch", exc)

    async def fetch(self, image_id: str) -> None:
        """One try at a queued job, within its owner's share of the fetch workers."""
        job = await self.core.jobs.get(image_id)
        if job is None or job.state != JobState.QUEUED:
            return
        if self.inflight[job.owner] >= self.core.tuning.owner_share:
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
                self.core.lane(parked).put(parked)
                if not waiting:
                    del self.parked[job.owner]

    async def _fetch(self, job: Job) -> None:
        core, tuning = self.core, self.core.tuning
        if not await self._still_pending(job):
            return
        policy = self.policy(job.model_id, tuning.max_image_pixels)
        if policy is None:
            await core.fail(job, FailureReason.MODEL_UNAVAILABLE, f"no checkpoint for model {job.model_id}")
            return
        window = tuning.fetch_deadline
        if job.image_id not in core.slow:  # a CID nobody answers holds a fast worker briefly
            window = min(window, tuning.fast_fetch_deadline)
        try:
            attempt = await self.fetcher.attempt(job.cid, time.monotonic() + window)
        except IpfsError as exc:  # a CID this oracle cannot verify
            await core.fail(job, exc.reason, str(exc))
            return
        except Strike as strike:
            await self._struck(job, "verify", strike)
            return
        if attempt.verdict is not None:
            await core.fail(job, attempt.verdict.reason, str(attempt.verdict))
            return
        if attempt.data is None:
            await self._unreachable(job, attempt)
            return
        deployment = core.chain.deployment
        try:
            opened = await self.opener.open(
                attempt.data,
                job.owner,
                deployment.chain_id,
                deployment.address,
                tuning.accept_plaintext,
                policy,
            )
        except (EnvelopeError, ImageRejected) as exc:
            await core.fail(job, exc.reason, str(exc))
            return
        except Strike as strike:
            await self._struck(job, "open", strike)
            return
        size = opened.pixels.nbytes
        await core.lanes.budget.acquire(size)
        image = Image.fromarray(opened.pixels, "RGB")
        await core.lanes.classify.put(
            Decoded(job.image_id, job.block_hash, image, opened.content_sha256, size, opened.reply_to)
        )

    async def _unreachable(self, job: Job, attempt: Attempt) -> None:
        """No gateway gave the content yet: a patient's upload may still be propagating, so the
        image fails only after the grace period, tried again at growing intervals until then.
        It then fails on what some gateways did answer (too many blocks, too large), if any."""
        core = self.core
        waited = time.time() - job.created_at.replace(tzinfo=UTC).timestamp()
        grace = core.tuning.unreachable_grace
        if waited >= grace and attempt.suspect is not None:  # what gateways answered, none contradicting
            await core.fail(job, attempt.suspect.reason, str(attempt.suspect))
            return
        if waited >= grace:
            error = f"no gateway gave it in {waited:.0f} s ({'; '.join(attempt.failures)})"
            await core.fail(job, FailureReason.CONTENT_UNREACHABLE, error)
            return
        if attempt.slow:
            core.slow.add(job.image_id)
        core.tries["fetch", job.image_id] += 1
        core.lane(job.image_id).put(job.image_id, min(core.backoff("fetch", job.image_id), grace - waited))

    async def _struck(self, job: Job, stage: str, strike: Strike) -> None:
        """The sandbox killed a worker over this image; past `max_strikes`, that is its verdict."""
        core = self.core
        count = await core.jobs.strike(job.image_id)
        core.metrics.strikes.labels(stage).inc()
        log.warning("image %s: sandbox %s worker killed (%s), strike %d", job.image_id, stage, strike, count)
        if count >= core.tuning.max_strikes:
            reason = {
                ("verify", "time"): FailureReason.CONTENT_MISMATCH,
                ("verify", "crash"): FailureReason.TOO_LARGE,
                ("open", "time"): FailureReason.UNSUPPORTED_IMAGE,
                ("open", "crash"): FailureReason.TOO_LARGE,
            }[stage, strike.kind]
            await core.fail(job, reason, f"{stage}: the sandbox killed its worker {count} times ({strike})")
            return
        core.slow.add(job.image_id)
        core.lanes.slow.put(job.image_id, core.tuning.retry_delay)

    async def _still_pending(self, job: Job) -> bool:
        """The chain decides: anything but pending settles the job (see `Core.settle`)."""
        if await self.core.chain.status(job.image_id) == Status.PENDING:
            return True
        await self.core.settle(job, await self.core.chain.image(job.image_id))
        return False
