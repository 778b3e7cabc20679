"""The `histochain` command. Verbs grow with the components they drive."""

import importlib
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

import click

from oracle.errors import HistochainError
from oracle.ml.commands import COMMANDS as ML_COMMANDS
from oracle.ml.sr.commands import sr
from oracle.settings import Settings

# Verbs of the local dev stack, loaded only when named: production verbs never import oracle.dev.
DEV_VERBS = {
    "dev": "The local development stack on embedded defaults.",
    "ipfs": "The local IPFS node (Pinata-compatible uploads, trustless gateway).",
    "page": "The page (frontend/) as a folder for any static file server.",
}


def fail(exc: HistochainError) -> NoReturn:
    click.secho(f"error: {exc}", fg="red", err=True)
    sys.exit(1)


class DevVerb(click.Group):
    """A dev verb in `histochain --help` whose subcommands load from oracle.dev on first use."""

    def _group(self) -> click.Group:
        group: click.Group = getattr(importlib.import_module("oracle.dev.commands"), self.name or "")
        return group

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._group().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._group().list_commands(ctx)


class Main(click.Group):
    """Turns a HistochainError from any verb into a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except HistochainError as exc:
            fail(exc)


@click.group(cls=Main)
@click.version_option(package_name="histochain")
def main() -> None:
    """histochain: register pathology images on Ethereum, classified by an AI oracle."""


for command in [*ML_COMMANDS, sr]:
    main.add_command(command)
for verb, summary in DEV_VERBS.items():
    main.add_command(DevVerb(verb, help=summary))


def stop_on_signals(stop: threading.Event) -> Callable[..., None]:
    """SIGINT and SIGTERM set `stop`; returns the handler. A handler runs on the main thread between
    bytecodes, even in the middle of an earlier run of itself, and Event.set takes a lock that is
    not reentrant: a second Ctrl-C landing inside the first one's set() would deadlock, so only the
    first signal acts."""
    handled = False

    def handler(*_: object) -> None:
        nonlocal handled
        if handled:
            return
        handled = True
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return handler


@main.group()
def oracle() -> None:
    """The oracle daemon."""


@oracle.command("run")
@click.option(
    "--role",
    type=click.Choice(["all", "coordinator", "worker"]),
    default="all",
    show_default=True,
    help="all: every stage in this process. coordinator: listen, dispatch, send (one active per "
    "oracle key, others stand by). worker: fetch, verify, open, classify (any number). "
    "coordinator and worker need database_url (PostgreSQL) and redis_url.",
)
def oracle_run(role: str) -> None:
    """Listen for registrations, classify verified images, commit results; Ctrl-C stops cleanly."""
    import asyncio

    from oracle.daemon.app import run_daemon
    from oracle.logs import configure

    configure()
    settings = Settings()

    async def main_loop() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_daemon(settings, stop, role)

    asyncio.run(main_loop())


@oracle.command("keygen")
def oracle_keygen() -> None:
    """Create the oracle's decryption key (an age X25519 identity) in its key file."""
    from oracle.crypto.keys import write_identity

    settings = Settings()
    if settings.oracle_key_path.exists():
        raise HistochainError(f"{settings.oracle_key_path} exists; refusing to overwrite a key")
    identity = write_identity(settings.oracle_key_path)
    click.echo(f"wrote {settings.oracle_key_path} (owner-only); public key {identity.to_public()}")
    click.echo("publish it on chain with: histochain oracle publish-key")


@oracle.command("key")
def oracle_key() -> None:
    """Print the oracle's public encryption key (age1…) and the bytes32 the registry stores."""
    from oracle.crypto.keys import oracle_identity, public_key

    identity = oracle_identity(Settings())
    click.echo(f"{identity.to_public()}  0x{public_key(identity).hex()}")


@oracle.command("publish-key")
def oracle_publish_key() -> None:
    """Publish the oracle's public encryption key on chain (setEncryptionKey, signed by the oracle)."""
    from web3 import HTTPProvider, Web3

    from oracle.chain.deploy import publish_encryption_key, published_key
    from oracle.chain.deployment import Deployment
    from oracle.crypto.keys import oracle_identity, public_key
    from oracle.signer import load_signer

    settings = Settings()
    deployment = Deployment.load(settings.deployment_path)
    rpc = settings.rpc_endpoints[0]
    signer = load_signer(settings, Web3(HTTPProvider(rpc)).eth.chain_id)
    key = public_key(oracle_identity(settings))
    if published_key(rpc, deployment, signer.address) == key:
        click.echo(f"the registry already holds this key for {signer.address}")
        return
    tx = publish_encryption_key(rpc, deployment, signer, key)
    click.echo(f"published 0x{key.hex()} for {signer.address} in {tx}")


@main.command("api")
def api_serve() -> None:
    """Serve the query API over the oracle's SQLite cache until Ctrl-C."""
    from aiohttp import web

    from oracle.api.app import ApiConfig, create_app
    from oracle.api.auth import AuthConfig
    from oracle.chain.deployment import Deployment
    from oracle.logs import configure
    from oracle.store.db import Database

    configure()
    settings = Settings()
    deployment = Deployment.load(settings.deployment_path)

    async def app() -> web.Application:
        db = Database(settings.database)
        await db.start()
        application = create_app(
            db,
            ApiConfig(cors_origins=tuple(settings.api_cors_origins), model_dir=settings.models_path),
            AuthConfig(settings.api_domain, settings.api_uri, deployment.chain_id, deployment.address),
        )

        async def close(_: web.Application) -> None:
            await db.close()

        application.on_cleanup.append(close)
        return application

    def ready(_: str) -> None:
        click.echo(f"query API  http://{settings.api_host}:{settings.api_port}  (OpenAPI: /v1/openapi.json)")
        click.echo("Ctrl-C stops.")

    web.run_app(app(), host=settings.api_host, port=settings.api_port, print=ready)
