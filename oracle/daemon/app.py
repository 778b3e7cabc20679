"""The composition root: the stages of a role (node.py) built from settings, their metrics
served, and, for a coordinator, the coordinator lock held while it works (leader.py)."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pyrage import x25519

from oracle.chain.registry import Registry
from oracle.daemon.jobs import JobRepository
from oracle.daemon.node import ROLES, Oracle
from oracle.daemon.untrusted import no_core_dumps
from oracle.errors import ConfigError
from oracle.metrics import metrics_app
from oracle.ml.catalog import ModelCatalog
from oracle.settings import Settings
from oracle.store.db import Database

if TYPE_CHECKING:
    import aiohttp

    from oracle.ipfs.pinata import PinataClient

log = logging.getLogger("histochain.oracle")

LISTENER = "image-registered"


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


def check_role(settings: Settings, role: str) -> None:
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role != "all" and (settings.redis_url is None or not settings.database.startswith("postgresql")):
        raise ConfigError(
            f"the {role} role shares its work through PostgreSQL and Redis: set database_url "
            "(postgresql+asyncpg://…) and redis_url (redis://…); see docs/OPERATIONS.md"
        )


@contextlib.asynccontextmanager
async def assemble(settings: Settings, role: str = "all") -> AsyncIterator[Oracle]:
    """The stages of `role` built from settings, and torn down on the way out; `run_daemon` runs them."""
    import aiohttp
    from web3 import AsyncWeb3
    from web3.types import RPCEndpoint

    from oracle.chain.deployment import Deployment
    from oracle.chain.rpc import FallbackHTTPProvider
    from oracle.chain.submitter import Submitter
    from oracle.signer import load_signer

    check_role(settings, role)
    deployment = Deployment.load(settings.deployment_path)
    db = Database(settings.database)
    await db.start()
    broker = None
    try:
        async with aiohttp.ClientSession() as http, contextlib.AsyncExitStack() as stack:
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
            chain_id = await w3.eth.chain_id
            parts: dict[str, Any] = {}
            if role == "worker" and settings.oracle_address is not None:
                oracle_address = settings.oracle_address
            else:
                account = load_signer(settings, chain_id)
                oracle_address = account.address
                if role != "worker":
                    parts["sender"] = Submitter(registry, account)
            if role != "coordinator":
                parts |= await stack.enter_async_context(
                    _classifier(settings, http, registry, oracle_address)
                )
            if role != "all":
                from oracle.daemon.stream import make_broker

                assert settings.redis_url is not None
                broker = make_broker(settings.redis_url, settings.tuning)
                await broker.startup()
                stack.push_async_callback(broker.shutdown)
            yield Oracle(
                JobRepository(db, LISTENER, deployment.block),
                registry,
                settings.tuning,
                oracle_address,
                role=role,
                broker=broker,
                ws_url=settings.websocket_url,
                **parts,
            )
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def _classifier(
    settings: Settings, http: "aiohttp.ClientSession", registry: Registry, oracle_address: str
) -> AsyncIterator[dict[str, Any]]:
    """What fetches, opens and classifies: the gateways, the sandbox holding the oracle's
    decryption key, and the models (torch is loaded here, and only by roles that classify)."""
    import torch

    from oracle.crypto.keys import oracle_identity
    from oracle.daemon.sandbox import Sandbox
    from oracle.ipfs.fetch import GatewayFetcher
    from oracle.ml.inference import resolve_device

    identity = oracle_identity(settings)
    await check_key_published(registry, oracle_address, identity)
    device = resolve_device(settings.device)
    caller_threads = torch.get_num_threads()  # process-wide: given back on the way out
    if device.type == "cpu":
        # Intra-op threads beyond the cores left over from decoding spin and steal from it.
        torch.set_num_threads(settings.inference_threads)
    sandbox = Sandbox(
        settings.sandbox_workers,
        settings.sandbox_time_limit,
        settings.sandbox_memory_limit,
        str(identity),
        settings.gate,
    )
    try:
        fetcher = GatewayFetcher(
            http, settings.gateways, settings.max_image_bytes, settings.tuning.fetch_timeout, sandbox.verify
        )
        yield {
            "fetcher": fetcher,
            "opener": sandbox,
            "catalog": ModelCatalog(settings.models_path, device),
            "pinner": pinner(settings, http),
        }
    finally:
        sandbox.close()
        torch.set_num_threads(caller_threads)


def pinner(settings: Settings, http: "aiohttp.ClientSession") -> "PinataClient":
    """Where what the oracle makes for owners (heat maps, upscaled images) is pinned: Pinata where a
    JWT is set, else the local node."""
    from oracle.ipfs.pinata import PinataClient

    if settings.pinata_jwt:
        return PinataClient(http, settings.pinata_jwt, settings.pinata_api_url)
    return PinataClient(http, settings.ipfs_token, settings.ipfs_url)


async def run_daemon(settings: Settings, stop: asyncio.Event, role: str = "all") -> None:
    """Builds the stages of `role` from settings and runs them until `stop` is set. A coordinator
    first waits for the coordinator lock (standby), and stops if it loses it."""
    from aiohttp import web

    no_core_dumps()  # decoded images pass through this process too
    async with assemble(settings, role) as oracle:
        runner = web.AppRunner(metrics_app(oracle.metrics, role))
        await runner.setup()
        await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
        log.info(
            "oracle %s (%s) on chain %d, registry %s",
            oracle.oracle_address,
            role,
            oracle.deployment.chain_id,
            oracle.deployment.address,
        )
        try:
            if role == "coordinator":
                await _lead(oracle, settings, stop)
            else:
                await oracle.run(stop)
        finally:
            await runner.cleanup()


async def _lead(oracle: Oracle, settings: Settings, stop: asyncio.Event) -> None:
    """Runs `oracle` while this process holds the coordinator lock."""
    from oracle.daemon.leader import CoordinatorLock, lock_key

    jobs = oracle.core.jobs
    assert isinstance(jobs, JobRepository)
    lock = CoordinatorLock(
        jobs.db.engine, lock_key(oracle.deployment, oracle.oracle_address), settings.tuning.poll_interval
    )
    try:
        if not await lock.acquire(stop):
            return
        watch = asyncio.create_task(lock.watch(stop))
        work = asyncio.create_task(oracle.run(stop))
        done, _ = await asyncio.wait({watch, work}, return_when=asyncio.FIRST_COMPLETED)
        if watch in done and watch.exception() is not None:
            stop.set()  # the lock is gone: stop sending at once
            await work
        await asyncio.gather(watch, work)
    finally:
        await lock.release()
