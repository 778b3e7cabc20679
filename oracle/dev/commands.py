"""The dev verbs of `histochain` (dev, ipfs, page): the local stack and the parts it serves. The
main command loads this module only when one of them runs, so production verbs never import
`oracle.dev`."""

import os
import signal
import sys
import threading
import time
from pathlib import Path

import click

from oracle.chain.anvil_accounts import dev_account
from oracle.cli import fail, stop_on_signals
from oracle.dev.ipfs import IpfsNode
from oracle.dev.stack import DEMO_SR_MODEL, DevStack
from oracle.errors import HistochainError
from oracle.settings import Settings


def _wait_for_ctrl_c() -> None:
    stop = threading.Event()
    stop_on_signals(stop)
    click.echo("Ctrl-C stops.")
    stop.wait()


@click.group()
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


@click.group()
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


@click.group()
def dev() -> None:
    """The local development stack on embedded defaults."""


@dev.command("up")
@click.option(
    "--demo", "with_demo", is_flag=True, help="Run `dev demo` once the stack is up, then keep running."
)
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=0,
    show_default=True,
    help="N > 0: the distributed mode, PostgreSQL and redis-server (Debian's), a coordinator and N workers.",
)
@click.option(
    "--verbose", is_flag=True, help="Every child's every line on the console (access lines, anvil's blocks)."
)
def dev_up(with_demo: bool, workers: int, verbose: bool) -> None:
    """Start the whole stack (chain, registry, IPFS node, model, oracle, API, page) until Ctrl-C.
    The console shows start-up, warnings and errors, the summary and the demo; every child's lines
    are in data/logs/."""
    from oracle.dev.stack import StackError

    stack = DevStack(Settings(), click.echo, workers, verbose)
    stop = threading.Event()
    started = time.monotonic()
    try:
        stack.start()
    except KeyboardInterrupt:
        click.echo("interrupted while starting; everything started so far is stopped")
        sys.exit(130)
    except HistochainError as exc:
        fail(exc)
    stop_on_signals(stop)
    try:
        _summary(stack, time.monotonic() - started)
        threading.Thread(target=_after_start, args=(stack, with_demo), daemon=True).start()
        stack.supervise(stop)
    except StackError as exc:
        stack.stop()
        fail(exc)
    stack.stop()
    click.echo(f"stopped; chain state saved in {stack.anvil.state_file}")


def _summary(stack: DevStack, seconds: float) -> None:
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
        (
            ("model", f"{stack.sr_card.name} 0x{stack.sr_card.model_id.hex()}", "super-resolution 4x")
            if stack.sr_card
            else ("model", DEMO_SR_MODEL, "super-resolution 4x: trained after the demo, published when ready")
        ),
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


def _after_start(stack: DevStack, with_demo: bool) -> None:
    """While the stack serves: the demo (its table), then, on a first run, the demo
    super-resolution model, trained and published so that it never holds up the table."""
    import asyncio

    from oracle.dev.demo import run_demo, table

    if with_demo:
        try:
            rows = asyncio.run(run_demo(stack.settings, images=6, timeout=300))
            click.echo(table(rows))
        except HistochainError as exc:
            click.secho(f"demo failed: {exc}", fg="red", err=True)
    if stack.sr_card is None:
        started = time.monotonic()
        try:
            card = stack.add_sr_model()
        except HistochainError as exc:
            click.secho(f"the demo super-resolution model was not published: {exc}", fg="red", err=True)
            return
        click.echo(
            f"super-resolution model {card.name} 0x{card.model_id.hex()} published on chain "
            f"({time.monotonic() - started:.0f} s): reload the page to choose it"
        )


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
        fail(HistochainError("a result document does not match its on-chain hash"))


@dev.command("status")
def dev_status() -> None:
    """Which services of the dev stack answer; exit code 1 when the stack or any service is down."""
    from oracle.dev.stack import alive, read_record

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
        fail(HistochainError(f"dev up (pid {record['pid']}) did not stop within {timeout:.0f}s"))
    click.echo("the dev stack stopped")
