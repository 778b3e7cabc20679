"""The `histochain` command. Verbs grow with the components they drive."""

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from oracle.dev.anvil import dev_account
from oracle.dev.ipfs import IpfsNode
from oracle.errors import HistochainError
from oracle.ml.commands import COMMANDS as ML_COMMANDS
from oracle.settings import Settings

if TYPE_CHECKING:
    from oracle.dev.stack import DevStack


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


def _wait_for_ctrl_c() -> None:
    stop = threading.Event()
    stop_on_signals(stop)
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


@main.group()
def page() -> None:
    """The page (frontend/) as a folder for any static file server."""


@page.command("build")
@click.option("--out", type=click.Path(path_type=Path), help="Where to write it (default: <data dir>/www).")
def page_build(out: Path | None) -> None:
    """Write the page and its config.json (chain, registry, IPFS node, API) into a folder."""
    from oracle.chain.deployment import Deployment
    from oracle.dev.site import build_site

    settings = Settings()
    site = build_site(out or settings.data_dir / "www", settings, Deployment.load(settings.deployment_path))
    click.echo(f"page written to {site}")
    click.echo(f"serve it with: python -m http.server --directory {site} {settings.page_port}")


@main.group()
def dev() -> None:
    """The local development stack on embedded defaults."""


@dev.command("up")
@click.option(
    "--demo", "with_demo", is_flag=True, help="Run `dev demo` once the stack is up, then keep running."
)
def dev_up(with_demo: bool) -> None:
    """Start the whole stack (chain, registry, IPFS node, model, oracle, API, page) until Ctrl-C."""
    from oracle.dev.stack import DevStack, StackError

    stack = DevStack(Settings(), click.echo)
    stop = threading.Event()
    started = time.monotonic()
    try:
        stack.start()
    except KeyboardInterrupt:
        click.echo("interrupted while starting; everything started so far is stopped")
        sys.exit(130)
    except HistochainError as exc:
        _fail(exc)
    stop_on_signals(stop)
    try:
        _summary(stack, time.monotonic() - started)
        if with_demo:
            threading.Thread(target=_demo_in_stack, args=(stack.settings, stop), daemon=True).start()
        stack.supervise(stop)
    except StackError as exc:
        stack.stop()
        _fail(exc)
    stack.stop()
    click.echo(f"stopped; chain state saved in {stack.anvil.state_file}")


def _summary(stack: "DevStack", seconds: float) -> None:
    from oracle.dev.stack import page_url

    s, deployment, card = stack.settings, stack.deployment, stack.card
    assert deployment is not None
    assert card is not None
    click.secho(f"histochain dev stack is up ({seconds:.0f} s)", bold=True)
    rows = [
        ("page", page_url(s), "open it in a browser with MetaMask"),
        ("api", stack.api.url, "OpenAPI: /v1/openapi.json"),
        ("ipfs", stack.ipfs.url, "uploads: POST /pinning/pinFileToIPFS; gateway: GET /ipfs/{cid}"),
        ("chain", stack.anvil.url, f"chain id {s.chain_id}"),
        ("registry", deployment.address, "deployed now" if stack.deployed else "reused"),
        ("model", f"{card.name} 0x{card.model_id.hex()}", "trained now" if stack.trained else "reused"),
        ("oracle", f"{stack.oracle.url}/metrics", "Prometheus metrics"),
    ]
    for name, where, note in rows:
        click.echo(f"  {name:<9} {where}  ({note})")
    click.echo(
        "dev accounts to import into MetaMask (anvil's well-known test keys; never use them for real funds):"
    )
    for index, role in enumerate(("admin", "oracle", "patient")):
        account = dev_account(index)
        click.echo(f"  {index} {role:<8} {account.address}  0x{account.key.hex()}")
    click.echo(
        "histochain dev demo | dev status | dev down (or Ctrl-C here) | logs in " + str(s.data_dir / "logs")
    )


def _demo_in_stack(settings: Settings, stop: threading.Event) -> None:
    import asyncio

    from oracle.dev.demo import run_demo, table

    try:
        rows = asyncio.run(run_demo(settings, images=6, timeout=300))
        click.echo(table(rows))
    except HistochainError as exc:
        click.secho(f"demo failed: {exc}", fg="red", err=True)


@dev.command("demo")
@click.option("--images", default=6, show_default=True, type=click.IntRange(1, 200))
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for the oracle.")
def dev_demo(images: int, timeout: float) -> None:
    """Register synthetic images as a patient would, wait for the oracle, verify and tabulate the results."""
    import asyncio

    from tqdm import tqdm

    from oracle.dev.demo import run_demo, table

    with tqdm(total=images, desc="waiting for the oracle", unit="image", leave=False) as progress:
        rows = asyncio.run(run_demo(Settings(), images, timeout, progress))
    click.echo(table(rows))
    if any(row.verified is False for row in rows):
        _fail(HistochainError("a result document does not match its on-chain hash"))


@dev.command("status")
def dev_status() -> None:
    """Which services of the dev stack answer; exit code 1 when the stack or any service is down."""
    from oracle.dev.stack import DevStack, alive, read_record

    stack = DevStack(Settings(), click.echo)
    record = read_record(stack.settings)
    if record is None or not alive(record.get("pid")):
        click.echo("the dev stack is not running (start it with: histochain dev up)")
        sys.exit(1)
    click.echo(f"dev stack (supervisor pid {record['pid']}), page {record['page']}")
    down = 0
    for child in stack.children:
        process = child.process
        try:
            state = "up" if process.probe() else "DOWN"
        except Exception:  # noqa: BLE001 - any failure to answer is "down"
            state = "DOWN"
        down += state == "DOWN"
        pid = record["services"].get(process.name, {}).get("pid")
        click.echo(f"  {process.name:<9} {state:<5} pid {pid}  {process.url}")
    sys.exit(1 if down else 0)


@dev.command("down")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for a clean stop.")
def dev_down(timeout: float) -> None:
    """Stop the dev stack that `dev up` runs (in another terminal or in the background)."""
    from oracle.dev.stack import alive, read_record

    settings = Settings()
    record = read_record(settings)
    if record is None or not alive(record.get("pid")):
        click.echo("the dev stack is not running")
        return
    os.kill(record["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(record["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive(record["pid"]):
        _fail(HistochainError(f"dev up (pid {record['pid']}) did not stop within {timeout:.0f}s"))
    click.echo("the dev stack stopped")
