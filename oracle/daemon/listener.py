"""The listener: turns `ImageRegistered` logs into jobs, from a checkpoint, in chunks, at a safe
depth, and rewinds when a reorg replaced what it had read. What wakes it is a head source: a
WebSocket `newHeads` subscription, or polling (always there as the fallback)."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Protocol

from oracle.daemon.core import unsettle_moved
from oracle.daemon.ports import Chain, Jobs
from oracle.metrics import Metrics
from oracle.settings import Tuning
from oracle.store.models import Checkpoint, JobState

log = logging.getLogger("histochain.oracle")

WS_RETRY = 30.0  # seconds of polling before the WebSocket is tried again
Enqueue = Callable[[Sequence[str]], None]


class HeadSource(Protocol):
    """Yields a label each time the listener should look at the chain again."""

    def wakeups(self, stop: asyncio.Event) -> AsyncGenerator[str, None]: ...


class Polling:
    """At once, then every `interval` seconds, for `duration` seconds (None: until stopped)."""

    def __init__(self, interval: float, duration: float | None = None) -> None:
        self.interval, self.duration = interval, duration

    async def wakeups(self, stop: asyncio.Event) -> AsyncGenerator[str, None]:
        end = time.monotonic() + (self.duration if self.duration is not None else float("inf"))
        while not stop.is_set() and time.monotonic() < end:
            yield "poll"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)


class WebSocketHeads:
    """Each new head of a `newHeads` subscription, or `idle` after `idle` seconds without one."""

    def __init__(self, url: str, idle: float) -> None:
        self.url, self.idle = url, idle

    async def wakeups(self, stop: asyncio.Event) -> AsyncGenerator[str, None]:
        from web3 import AsyncWeb3, WebSocketProvider

        async with AsyncWeb3(WebSocketProvider(self.url)) as w3:
            await w3.eth.subscribe("newHeads")
            yield "websocket"  # catch up before following
            heads = w3.socket.process_subscriptions()
            while not stop.is_set():
                try:
                    await asyncio.wait_for(anext(heads), self.idle)
                    yield "websocket"
                except TimeoutError:
                    yield "idle"


class Listener:
    def __init__(
        self,
        jobs: Jobs,
        chain: Chain,
        tuning: Tuning,
        metrics: Metrics,
        new_jobs: Enqueue,
        resend: Enqueue,
        ws_url: str | None = None,
    ) -> None:
        self.jobs, self.chain, self.tuning, self.metrics = jobs, chain, tuning, metrics
        self.new_jobs, self.resend, self.ws_url = new_jobs, resend, ws_url
        self._head_hash = ""  # the last head recorded, to write it only when it changes

    async def listen(self, stop: asyncio.Event) -> None:
        """Follows the WebSocket when one is configured; polls otherwise, and meanwhile whenever
        the socket fails (tried again every `WS_RETRY` seconds)."""
        while not stop.is_set():
            if self.ws_url:
                try:
                    await self.follow(WebSocketHeads(self.ws_url, self.tuning.poll_interval * 10), stop)
                except Exception as exc:  # noqa: BLE001 - any socket failure falls back to polling
                    log.warning("websocket follow failed, polling: %s: %s", type(exc).__name__, exc)
            await self.follow(Polling(self.tuning.poll_interval, WS_RETRY if self.ws_url else None), stop)

    async def follow(self, source: HeadSource, stop: asyncio.Event) -> None:
        # aclosing: a cancelled listener must close the source (and its socket) on the way out.
        async with contextlib.aclosing(source.wakeups(stop)) as wakeups:
            async for wakeup in wakeups:
                self.metrics.wakeups.labels(wakeup).inc()
                await self.poll_once()

    async def poll_once(self) -> None:
        """Turns the logs of every block up to the safe head into jobs, chunk by chunk."""
        head = await self.chain.head()
        head_hash = await self.chain.block_hash_or_none(head)  # now: a reorg during this pass shows next
        safe = head - self.tuning.confirmations
        checkpoint, seen = await self.jobs.checkpoint(), await self.jobs.head()
        reorged = await self._reorged(checkpoint, safe, seen)
        if reorged is not None:
            await self._rewind(reorged, checkpoint.block_number)
            checkpoint = await self.jobs.checkpoint()
        else:
            await self._still_settled(seen.block_number)
        start = checkpoint.block_number + 1
        while start <= safe:
            end = min(safe, start + self.tuning.log_chunk_blocks - 1)
            end_hash = await self.chain.block_hash_or_none(end)
            registrations = await self.chain.registrations(start, end)
            if end_hash is None or end_hash != await self.chain.block_hash_or_none(end):
                return  # the chain changed while its logs were read: they may be from either side
            self.new_jobs(await self.jobs.record(registrations, end, end_hash))
            start = end + 1
        if head_hash is not None and head_hash != self._head_hash:
            await self.jobs.saw_head(head, head_hash)
            self._head_hash = head_hash

    async def _reorged(self, checkpoint: Checkpoint, safe: int, head: Checkpoint) -> int | None:
        """The block a reorg was seen at: the checkpoint's (registrations may have changed), or the
        last head seen (the oracle's own transactions above the checkpoint may be gone)."""
        recorded = checkpoint.block_hash and checkpoint.block_number <= safe  # "": not recorded yet
        if recorded and await self.chain.block_hash(checkpoint.block_number) != checkpoint.block_hash:
            return checkpoint.block_number
        if head.block_hash and await self.chain.block_hash_or_none(head.block_number) != head.block_hash:
            return head.block_number
        return None

    async def _rewind(self, block: int, checkpoint: int) -> None:
        """A reorg replaced `block`: move the checkpoint back `reorg_depth` blocks below it and
        rescan. A job whose registration block is gone is over (a registration made again in
        the new chain is a new job); a job whose registration stands but whose settling
        transaction is gone goes out again with the same document."""
        back_to = max(self.chain.deployment.block - 1, min(checkpoint, block - self.tuning.reorg_depth))
        log.warning("reorg below block %d: rescanning from %d", block, back_to + 1)
        canonical: dict[int, str | None] = {}

        async def is_canonical(number: int, block_hash: str) -> bool:
            if number not in canonical:
                canonical[number] = await self.chain.block_hash_or_none(number)
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
                and await self.chain.mined_in(job.submit_tx) is None
                and await self.jobs.unsettled(job)
            ):
                resend.append(job.image_id)
        await self.jobs.rewind(back_to)
        self._head_hash = ""
        self.resend(resend)
        self.metrics.jobs.labels("reorged").inc(erased + len(resend))

    async def _still_settled(self, above: int) -> None:
        """Settlements recorded above the last head seen: a reorg up there changed no hash the
        listener kept, so each such transaction is looked up again; one no longer where the job
        says goes out again with the same document (or is settled anew from the chain)."""
        settled = [
            (job, job.submit_tx, job.confirmed_block)
            for job in await self.jobs.since(above)
            if job.state == JobState.CONFIRMED
            and job.submit_tx is not None
            and job.confirmed_block is not None
            and job.confirmed_block > above
        ]
        resend = await unsettle_moved(self.chain, self.jobs, settled)
        if resend:
            log.warning("%d settlement(s) above block %d left the chain: sending again", len(resend), above)
            self.resend(resend)
            self.metrics.jobs.labels("reorged").inc(len(resend))
