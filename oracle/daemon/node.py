"""The stages of one oracle process, by role, joined by queues (`Lanes`) and run until stopped.

listen → fetch → classify → submit. Every job's state lives in the store and changes before the
next stage sees it, so a crash at any point resumes (`recover`) without losing or duplicating work;
the chain stays the source of truth and is re-checked before anything is sent. Job rows change
only through `JobRepository`, whose writes are compare-and-set: a stage acting on what it read
before a reorg changes nothing."""

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from oracle.daemon.core import Core, Lanes
from oracle.daemon.listener import Listener
from oracle.daemon.ports import Chain, Fetcher, Jobs, Opener, Pinner, Sender, WorkQueue
from oracle.daemon.queues import Discard
from oracle.daemon.stages.classify import ClassifyStage
from oracle.daemon.stages.fetch import FetchStage
from oracle.daemon.stages.submit import SubmitStage
from oracle.errors import ConfigError
from oracle.metrics import Metrics, Waiting
from oracle.ml.catalog import ModelCatalog
from oracle.settings import Tuning
from oracle.store.models import JobState

if TYPE_CHECKING:
    from taskiq import AsyncBroker

log = logging.getLogger("histochain.oracle")

ROLES = ("all", "coordinator", "worker")


class Oracle:
    """The stages of one oracle process, wired to one store and chain. Its role says which:
    `all` is every stage in one process (the embedded default); a `coordinator` listens,
    dispatches work to the stream and sends outcomes; a `worker` takes work from the stream,
    fetches, opens and classifies, and writes outcomes to the shared store."""

    def __init__(
        self,
        jobs: Jobs,
        chain: Chain,
        tuning: Tuning,
        oracle_address: str,
        *,
        role: str = "all",
        sender: Sender | None = None,
        fetcher: Fetcher | None = None,
        opener: Opener | None = None,
        pinner: Pinner | None = None,
        catalog: ModelCatalog | None = None,
        broker: "AsyncBroker | None" = None,
        ws_url: str | None = None,
    ) -> None:
        if role not in ROLES:
            raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        self.role, self.tuning, self.catalog, self.deployment = role, tuning, catalog, chain.deployment
        self.oracle_address = oracle_address
        self.lanes = Lanes(tuning.decoded_budget)
        if role == "worker":
            self.lanes.submit = Discard()  # the coordinator finds outcomes in the store
        queues: dict[str, Waiting] = {
            "fetch": self.lanes.fetch,
            "slow": self.lanes.slow,
            "classify": self.lanes.classify,
            "upscale": self.lanes.upscale,
            "submit": self.lanes.submit,
        }
        self.metrics = Metrics(queues)
        self.core = Core(jobs, chain, tuning, self.metrics, self.lanes)
        self.loops: dict[str, Callable[[asyncio.Event], Awaitable[None]]] = {}
        if role != "worker":
            assert sender is not None
            self.listener = Listener(
                jobs,
                chain,
                tuning,
                self.metrics,
                self._put(self.lanes.fetch),
                self._put(self.lanes.submit),
                ws_url,
            )
            self.submit = SubmitStage(self.core, sender)
            self.loops |= {"listen": self.listener.listen, "submit": self.submit.loop}
        if role != "coordinator":
            assert fetcher is not None
            assert opener is not None
            assert catalog is not None
            self.fetch = FetchStage(self.core, fetcher, opener, catalog.policy)
            self.classify = ClassifyStage(self.core, catalog, oracle_address, pinner)
            self.loops["classify"] = self.classify.loop
            self.loops["upscale"] = self.classify.upscale_loop
            slow = min(tuning.slow_lane_workers, tuning.fetch_concurrency - 1)
            for i in range(tuning.fetch_concurrency):
                queue = self.lanes.slow if i < slow else self.lanes.fetch
                self.loops[f"fetch-{i}"] = functools.partial(self.fetch.loop, queue=queue)
        if role != "all":
            from oracle.daemon.stream import Collect, Dispatch, Intake

            assert broker is not None
            if role == "coordinator":
                self.loops |= {
                    "dispatch": Dispatch(self.core, broker).loop,
                    "collect": Collect(self.core).loop,
                }
            else:
                self.loops["intake"] = Intake(self.core, self.fetch, broker).loop

    @staticmethod
    def _put(queue: WorkQueue[str]) -> Callable[[Sequence[str]], None]:
        def put(image_ids: Sequence[str]) -> None:
            for image_id in image_ids:
                queue.put(image_id)

        return put

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; then stops taking work and leaves the rest checkpointed in the store."""
        await self.core.chain.check_chain()
        if self.role != "worker":
            await self.recover()
        self.metrics.active = True
        halt = asyncio.Event()  # the other loops run on while a worker drains
        tasks = {
            name: asyncio.create_task(self._guard(name, loop, stop if name == "intake" else halt))
            for name, loop in self.loops.items()
        }
        await stop.wait()
        if "intake" in tasks:
            await self._drain(tasks["intake"])
        halt.set()
        workers = list(tasks.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self.metrics.active = False
        if self.role != "coordinator":
            self.classify.close()
        log.info("stopped")

    async def _drain(self, intake: "asyncio.Task[None]") -> None:
        """A worker stopping: no more reads from the stream; the messages it holds are fetched,
        classified and written, then acknowledged, within `drain_timeout` (what is left then is
        taken over by another worker after `redelivery_idle`)."""
        try:
            async with asyncio.timeout(self.tuning.drain_timeout):
                await intake
                await self.lanes.budget.drained()
        except TimeoutError:
            log.warning("drain: not finished in %.0f s; the rest is redelivered", self.tuning.drain_timeout)
        else:
            log.info("drained")

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
        """Re-queues every unfinished job from the store after a start or a crash."""
        jobs = await self.core.jobs.unfinished()
        for job in jobs:
            (self.lanes.fetch if job.state == JobState.QUEUED else self.lanes.submit).put(job.image_id)
        if jobs:
            log.info("recovered %d unfinished jobs", len(jobs))
