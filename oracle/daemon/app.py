"""The composition root: the daemon's parts built from settings, run until stopped.

listen → fetch → classify → submit, joined by queues (`Lanes`). Every job's state lives in the
store and changes before the next stage sees it, so a crash at any point resumes (`recover`)
without losing or duplicating work; the chain stays the source of truth and is re-checked before
anything is sent. Job rows change only through `JobRepository`, whose writes are compare-and-set:
a stage acting on what it read before a reorg changes nothing."""

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from pyrage import x25519

from oracle.chain.registry import Registry
from oracle.daemon.core import Core, Lanes
from oracle.daemon.jobs import JobRepository
from oracle.daemon.listener import Listener
from oracle.daemon.ports import Chain, Fetcher, Jobs, Opener, Sender, WorkQueue
from oracle.daemon.stages.classify import ClassifyStage
from oracle.daemon.stages.fetch import FetchStage
from oracle.daemon.stages.submit import SubmitStage
from oracle.errors import ConfigError
from oracle.metrics import Metrics, Waiting, metrics_app
from oracle.ml.catalog import ModelCatalog
from oracle.settings import Settings, Tuning
from oracle.store.db import Database
from oracle.store.models import JobState

log = logging.getLogger("histochain.oracle")

LISTENER = "image-registered"


class Oracle:
    """Every stage of one oracle process, wired to one store, chain and signer."""

    def __init__(
        self,
        jobs: Jobs,
        chain: Chain,
        sender: Sender,
        fetcher: Fetcher,
        opener: Opener,
        catalog: ModelCatalog,
        tuning: Tuning,
        ws_url: str | None = None,
    ) -> None:
        self.tuning, self.catalog, self.deployment = tuning, catalog, chain.deployment
        self.lanes = Lanes(tuning.decoded_budget)
        queues: dict[str, Waiting] = {
            "fetch": self.lanes.fetch,
            "slow": self.lanes.slow,
            "classify": self.lanes.classify,
            "submit": self.lanes.submit,
        }
        self.metrics = Metrics(queues)
        self.core = Core(jobs, chain, tuning, self.metrics, self.lanes)
        self.oracle_address = sender.account.address
        self.listener = Listener(
            jobs,
            chain,
            tuning,
            self.metrics,
            self._put(self.lanes.fetch),
            self._put(self.lanes.submit),
            ws_url,
        )
        self.fetch = FetchStage(self.core, fetcher, opener, catalog.__contains__)
        self.classify = ClassifyStage(self.core, catalog, self.oracle_address)
        self.submit = SubmitStage(self.core, sender)

    @staticmethod
    def _put(queue: WorkQueue[str]) -> Callable[[Sequence[str]], None]:
        def put(image_ids: Sequence[str]) -> None:
            for image_id in image_ids:
                queue.put(image_id)

        return put

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; then stops taking work and leaves the rest checkpointed in the store."""
        await self.core.chain.check_chain()
        await self.recover()
        workers = [
            asyncio.create_task(self._guard("listen", self.listener.listen, stop)),
            asyncio.create_task(self._guard("classify", self.classify.loop, stop)),
            asyncio.create_task(self._guard("submit", self.submit.loop, stop)),
        ]
        slow = min(self.tuning.slow_lane_workers, self.tuning.fetch_concurrency - 1)
        for i in range(self.tuning.fetch_concurrency):
            lane = functools.partial(self.fetch.loop, queue=self.lanes.slow if i < slow else self.lanes.fetch)
            workers.append(asyncio.create_task(self._guard(f"fetch-{i}", lane, stop)))
        await stop.wait()
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self.classify.close()
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
        """Re-queues every unfinished job from the store after a start or a crash."""
        jobs = await self.core.jobs.unfinished()
        for job in jobs:
            (self.lanes.fetch if job.state == JobState.QUEUED else self.lanes.submit).put(job.image_id)
        if jobs:
            log.info("recovered %d unfinished jobs", len(jobs))


async def check_key_published(chain: Registry, oracle: str, identity: x25519.Identity) -> None:
    """Patients encrypt to the keys on chain: an oracle whose own key is not there could open
    nothing it is sent, and would only fail every image."""
    from oracle.crypto.keys import public_key

    published = (await chain.encryption_keys()).get(oracle)
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
    from oracle.chain.submitter import Submitter
    from oracle.crypto.keys import oracle_identity
    from oracle.daemon.sandbox import Sandbox
    from oracle.ipfs.fetch import GatewayFetcher
    from oracle.ml.inference import resolve_device
    from oracle.signer import load_signer

    tuning = settings.tuning
    deployment = Deployment.load(settings.deployment_path)
    identity = oracle_identity(settings)
    device = resolve_device(settings.device)
    catalog = ModelCatalog(settings.models_path, device)
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
                http, settings.gateways, settings.max_image_bytes, tuning.fetch_timeout, sandbox.verify
            )
            try:
                yield Oracle(
                    JobRepository(db, LISTENER, deployment.block),
                    registry,
                    Submitter(registry, account),
                    fetcher,
                    sandbox,
                    catalog,
                    tuning,
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
