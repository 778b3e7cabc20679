"""The `histochain` command. Verbs grow with the components they drive."""

import signal
import sys
import threading
from typing import NoReturn

import click
from eth_account import Account

from oracle.chain.deploy import deploy_on_devnet, deployment_on_chain
from oracle.dev.anvil import ANVIL_TEST_MNEMONIC, Anvil
from oracle.dev.ipfs import IpfsNode
from oracle.errors import HistochainError
from oracle.ml.commands import COMMANDS as ML_COMMANDS
from oracle.settings import Settings

DEV_ACCOUNTS_SHOWN = 3


def _fail(exc: HistochainError) -> NoReturn:
    click.secho(f"error: {exc}", fg="red", err=True)
    sys.exit(1)


class Main(click.Group):
    """Turns a HistochainError from any verb into a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except HistochainError as exc:
            _fail(exc)


@click.group(cls=Main)
@click.version_option(package_name="histochain")
def main() -> None:
    """histochain: register pathology images on Ethereum, classified by an AI oracle."""


for command in ML_COMMANDS:
    main.add_command(command)


def _wait_for_ctrl_c() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo("Ctrl-C stops.")
    stop.wait()


@main.group()
def ipfs() -> None:
    """The local IPFS node (Pinata-compatible uploads, trustless gateway)."""


@ipfs.command("serve")
def ipfs_serve() -> None:
    """Run the local IPFS node until Ctrl-C; content is kept under <data dir>/ipfs."""
    settings = Settings()
    node = IpfsNode(
        settings.ipfs_host,
        settings.ipfs_port,
        settings.data_dir / "ipfs",
        settings.ipfs_token,
        settings.data_dir / "logs" / "ipfs.log",
        settings.ipfs_max_upload_bytes,
    )
    node.start()
    try:
        click.echo(
            f"ipfs node  {node.url}  (uploads: POST /pinning/pinFileToIPFS; gateway: GET /ipfs/{{cid}})"
        )
        _wait_for_ctrl_c()
    finally:
        node.stop()


@main.group()
def oracle() -> None:
    """The oracle daemon."""


@oracle.command("run")
def oracle_run() -> None:
    """Listen for registrations, classify verified images, commit results; Ctrl-C stops cleanly."""
    import asyncio

    from oracle.logs import configure
    from oracle.pipeline import run_daemon

    configure()
    settings = Settings()

    async def main_loop() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_daemon(settings, stop)

    asyncio.run(main_loop())


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


@main.group()
def dev() -> None:
    """The local development stack on embedded defaults."""


@dev.command("up")
def dev_up() -> None:
    """Start the dev chain, deploy the registry unless the chain still holds it, run until Ctrl-C."""
    settings = Settings()
    anvil = Anvil(
        settings.chain_host,
        settings.chain_port,
        settings.chain_id,
        state_file=settings.data_dir / "chain" / "state.json",
        log_file=settings.data_dir / "logs" / "anvil.log",
    )
    try:
        anvil.start()
        deployment = deployment_on_chain(settings.deployment_path, anvil.url)
        reused = deployment is not None
        if deployment is None:
            click.echo("deploying ImageRegistry ...")
            deployment = deploy_on_devnet(anvil.url, settings.deployment_path)
    except HistochainError as exc:
        anvil.stop()
        _fail(exc)
    try:
        click.echo(f"dev chain  {anvil.url}  (chain id {settings.chain_id})")
        state = "reused" if reused else "deployed"
        click.echo(f"registry   {deployment.address}  ({state}; {settings.deployment_path})")
        click.echo("dev accounts (anvil's well-known test keys; never use them for real funds):")
        Account.enable_unaudited_hdwallet_features()
        for index in range(DEV_ACCOUNTS_SHOWN):
            account = Account.from_mnemonic(ANVIL_TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
            click.echo(f"  {account.address}  {account.key.to_0x_hex()}")
        _wait_for_ctrl_c()
    finally:
        anvil.stop()
        click.echo("stopped; chain state saved in " + str(anvil.state_file))
