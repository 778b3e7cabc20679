"""The long-running verbs as a user runs them: `ipfs serve` (the real node) and `api`, each
stopped with Ctrl-C. `dev up`, which runs them all, has its own suite (tests/e2e/test_dev_stack.py)."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiohttp
import yaml

from oracle.cli import stop_on_signals
from oracle.ipfs.fetch import GatewayFetcher
from oracle.ipfs.pinata import PinataClient
from oracle.settings import DEV_IPFS_TOKEN, Settings
from tests.oracle.chain.test_deployment import VALID as VALID_DEPLOYMENT
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]


def run_until_ready(args: list[str], data_dir: Path, env: dict[str, str], check: Callable[[], None]) -> str:
    """Runs `histochain ARGS` until it says Ctrl-C stops it, runs `check`, sends Ctrl-C, expects exit 0."""
    env = {**os.environ, "HISTOCHAIN_DATA_DIR": str(data_dir), **env}
    cli = Path(sys.executable).with_name("histochain")
    proc = subprocess.Popen([cli, *args], env=env, stdout=subprocess.PIPE, text=True, cwd=data_dir)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Ctrl-C stops"):
            break
    try:
        check()
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    return "".join(lines) + rest


def test_ipfs_serve_accepts_uploads_with_the_dev_token_and_keeps_them(tmp_path: Path) -> None:
    port = free_port()
    data = os.urandom(1000)
    uploaded: list[str] = []

    def upload() -> None:
        async def go() -> None:
            async with aiohttp.ClientSession() as session:
                pin = await PinataClient(session, DEV_IPFS_TOKEN, f"http://127.0.0.1:{port}").pin_file(
                    data, "a.bin"
                )
                uploaded.append(pin.cid)

        asyncio.run(go())

    output = run_until_ready(["ipfs", "serve"], tmp_path, {"HISTOCHAIN_IPFS_PORT": str(port)}, upload)
    assert f"ipfs node  http://127.0.0.1:{port}" in output

    def fetch() -> None:
        async def go() -> None:
            async with aiohttp.ClientSession() as session:
                got = await GatewayFetcher(session, [f"http://127.0.0.1:{port}"], max_bytes=1 << 20).fetch(
                    uploaded[0]
                )
                assert got.data == data

        asyncio.run(go())

    run_until_ready(["ipfs", "serve"], tmp_path, {"HISTOCHAIN_IPFS_PORT": str(port)}, fetch)
    assert (tmp_path / "ipfs").is_dir()


def test_settings_defaults_match_the_devnet_in_ape_config() -> None:
    config = yaml.safe_load((ROOT / "ape-config.yaml").read_text())
    (devnet,) = [n for n in config["networks"]["custom"] if n["name"] == "devnet"]
    settings = Settings()
    assert devnet["chain_id"] == settings.chain_id
    assert config["node"]["ethereum"]["devnet"]["uri"] == settings.rpc_url


def test_api_serves_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "deployment.json").write_text(json.dumps(VALID_DEPLOYMENT))

    def health() -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/openapi.json", timeout=5) as response:
            assert json.load(response)["info"]["title"] == "histochain query API"

    output = run_until_ready(["api"], tmp_path, {"HISTOCHAIN_API_PORT": str(port)}, health)
    assert f"query API  http://127.0.0.1:{port}" in output


def test_a_second_ctrl_c_during_the_first_ones_stop_cannot_deadlock() -> None:
    """What a double Ctrl-C did to `dev up`: the second signal ran the handler again while the
    first one was inside Event.set, holding its lock, and the main thread waited on itself. Here
    the lock is held on purpose and the handler runs again, on a thread that must come back."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    stop = threading.Event()
    try:
        handler = stop_on_signals(stop)
        handler(signal.SIGINT, None)
        assert stop.is_set()
        with stop._cond:  # the first signal's set() still in progress
            again = threading.Thread(target=handler, args=(signal.SIGINT, None), daemon=True)
            again.start()
            again.join(timeout=5)
            assert not again.is_alive(), "a second signal blocked on the first one's lock"
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
