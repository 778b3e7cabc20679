"""README command 1's engine, `histochain dev up`, as a user runs it: the whole stack from an empty
data folder, `dev demo` through it, `dev status`, the page in Chromium, a killed child restarted,
`dev down`, a second start that reuses everything, Ctrl-C, and the ways it refuses or gives up."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from oracle.chain.anvil_accounts import dev_account
from oracle.dev.process import ensure_port_free
from tests.e2e.conftest import wallet_page
from tests.support import free_port

CLI = Path(sys.executable).with_name("histochain")
UP = "dev down (or Ctrl-C here)"  # the last line of the summary
START_TIMEOUT = 300


class DevUp:
    """`histochain dev up` in the background; every output line is kept, and waited for by content."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [CLI, "dev", "up", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, text: str, timeout: float = START_TIMEOUT, after: int = 0) -> int:
        """Index of the first line from `after` on that contains `text`."""

        def found() -> int | None:
            return next((i for i, line in enumerate(self.lines[after:], after) if text in line), None)

        with self.changed:
            ok = self.changed.wait_for(lambda: found() is not None or self.proc.poll() is not None, timeout)
            index = found()
        assert ok, f"no {text!r} within {timeout}s:\n" + "\n".join(self.lines[-40:])
        assert index is not None, f"dev up exited ({self.proc.returncode}) before {text!r}:\n" + self.output
        return index

    @property
    def output(self) -> str:
        with self.changed:
            return "\n".join(self.lines)

    def finish(self, timeout: float = 60) -> int:
        """Exit code, once the process ended and all its output was read."""
        code = self.proc.wait(timeout)
        self.reader.join(timeout)
        return code


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    ports = {name: free_port() for name in ("CHAIN", "IPFS", "API", "PAGE", "METRICS")}
    return {
        **os.environ,
        "HISTOCHAIN_CONFIG": str(tmp_path / "histochain.toml"),
        "HISTOCHAIN_DATA_DIR": str(tmp_path / "data"),
        **{f"HISTOCHAIN_{name}_PORT": str(port) for name, port in ports.items()},
        "HISTOCHAIN_DEVICE": "cpu",
        "HISTOCHAIN_DEV_TRAIN_PATIENTS": "12",
        "HISTOCHAIN_DEV_TRAIN_IMAGES_PER_PATIENT": "2",
        "HISTOCHAIN_DEV_TRAIN_EPOCHS": "2",
        "HISTOCHAIN_DEV_TRAIN_IMAGE_SIZE": "32",
        "HISTOCHAIN_DEV_SR_STEPS": "4",
    }


@pytest.fixture
def launch(stack_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., DevUp]]:
    """Starts `dev up`; whatever is still running at the end is stopped (SIGTERM stops its children)."""
    started: list[DevUp] = []

    def start(*args: str) -> DevUp:
        started.append(DevUp(stack_env, tmp_path, *args))
        return started[-1]

    yield start
    for up in started:
        if up.proc.poll() is None:
            up.proc.terminate()
            up.finish()


def histochain(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def record(env: dict[str, str]) -> dict:
    return json.loads((Path(env["HISTOCHAIN_DATA_DIR"]) / "dev" / "stack.json").read_text())


def ports_free(env: dict[str, str]) -> None:
    for name in ("CHAIN", "IPFS", "API", "PAGE", "METRICS"):
        ensure_port_free("127.0.0.1", int(env[f"HISTOCHAIN_{name}_PORT"]))


def test_dev_up_runs_the_demo_serves_the_page_and_restarts_what_dies(
    stack_env: dict[str, str], launch: Callable[..., DevUp], tmp_path: Path, browser: Browser
):
    env = stack_env
    up = launch()
    up.wait_for(UP)
    output = up.output
    page_url = f"http://localhost:{env['HISTOCHAIN_PAGE_PORT']}"
    deployment = json.loads((tmp_path / "data" / "deployment.json").read_text())
    assert f"page      {page_url}" in output
    assert f"registry  {deployment['address']}  (deployed now)" in output
    assert "(trained now)" in output
    assert "srresnet-demo  (super-resolution 4x: trained after the demo, published when ready)" in output
    assert [m["name"] for m in deployment["models"]] == ["basecnn-demo"], "the table waits for no SR model"
    published = up.lines[up.wait_for("super-resolution model srresnet-demo 0x")]
    deployment = json.loads((tmp_path / "data" / "deployment.json").read_text())
    sr_model = next(m for m in deployment["models"] if m["name"] == "srresnet-demo")
    assert f"srresnet-demo {sr_model['model_id']} published on chain" in published
    site = json.loads((tmp_path / "data" / "www" / "config.json").read_text())
    assert sr_model["model_id"] in json.dumps(site["models"]), "the page's config lists it"
    assert "SYNTHETIC" in output
    assert dev_account(2).address in output

    status = histochain(env, "dev", "status")
    assert status.returncode == 0, status.stdout
    assert status.stdout.count(" up ") == 5

    demo = histochain(env, "dev", "demo", "--images", "3")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    rows = [line for line in demo.stdout.splitlines() if line[:1].isdigit()]
    assert len(rows) == 3
    assert all("classified" in row and "✓" in row for row in rows), demo.stdout
    db = sqlite3.connect(f"file:{tmp_path / 'data' / 'oracle.db'}?mode=ro", uri=True)
    confirmed = db.execute(
        "SELECT count(*) FROM jobs WHERE owner = ? AND state = 'confirmed' AND outcome = 'result'",
        (dev_account(2).address,),
    ).fetchone()
    db.close()
    assert confirmed == (3,)
    logs = tmp_path / "data" / "logs"
    assert "Transaction: 0x" in (logs / "anvil.log").read_text(), "anvil's blocks are in its log"
    assert "aiohttp.access" in (logs / "api.log").read_text(), "the API's access lines are in its log"
    noise = [line for line in up.lines if line.startswith(" anvil | ") or "aiohttp.access" in line]
    assert noise == [], "a quiet console: neither access lines nor anvil's blocks"

    rpc = f"http://127.0.0.1:{env['HISTOCHAIN_CHAIN_PORT']}"
    context, session = wallet_page(browser, page_url, rpc, deployment["chain_id"], "dev_stack")
    try:
        page = session.page
        page.get_by_role("button", name="Connect wallet").click()
        expect(page.locator("#mine li")).to_have_count(3)
        expect(page.locator('#mine li[data-status="2"]')).to_have_count(3)
        session.shot("my-demo-images")
    finally:
        context.close()

    oracle_pid = record(env)["services"]["oracle"]["pid"]
    os.kill(oracle_pid, signal.SIGKILL)
    restarted = up.wait_for("supervisor | oracle exited with code -9; restarting (1/3)", timeout=60)
    back = up.lines[up.wait_for("supervisor | oracle is back", after=restarted, timeout=120)]
    assert back.endswith(f"(pid {record(env)['services']['oracle']['pid']})")
    assert record(env)["services"]["oracle"]["pid"] != oracle_pid
    assert histochain(env, "dev", "status").returncode == 0

    down = histochain(env, "dev", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert up.finish() == 0, up.output
    assert "chain state saved" in up.output
    ports_free(env)
    assert histochain(env, "dev", "status").returncode == 1

    again = launch("--verbose")
    again.wait_for(UP)
    assert any(line.startswith(" anvil | ") for line in again.lines), "--verbose shows every line"
    assert f"registry  {deployment['address']}  (reused)" in again.output
    assert "(reused)" in again.output.split("model", 1)[1]
    assert f"srresnet-demo {sr_model['model_id']}  (super-resolution 4x)" in again.output
    again.proc.send_signal(signal.SIGINT)
    assert again.finish() == 0, again.output
    ports_free(env)


def test_a_taken_port_is_refused_before_anything_starts(stack_env: dict[str, str], tmp_path: Path):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(stack_env["HISTOCHAIN_API_PORT"])))
        holder.listen()
        result = histochain(stack_env, "dev", "up", timeout=60)
    assert result.returncode == 1
    assert f"127.0.0.1:{stack_env['HISTOCHAIN_API_PORT']} is already in use" in result.stderr
    assert not (tmp_path / "data" / "chain").exists()


def test_the_demo_runs_in_the_stack_and_a_child_that_keeps_dying_stops_it(
    stack_env: dict[str, str], launch: Callable[..., DevUp]
):
    up = launch("--demo")
    up.wait_for(UP)
    table = up.wait_for("#  truth")
    assert len([line for line in up.lines[table:] if "classified" in line and "✓" in line]) == 6, up.output
    for attempt in range(1, 4):
        os.kill(record(stack_env)["services"]["page"]["pid"], signal.SIGKILL)
        done = up.wait_for(f"page exited with code -9; restarting ({attempt}/3)", timeout=60)
        up.wait_for("supervisor | page is back", after=done, timeout=60)
    os.kill(record(stack_env)["services"]["page"]["pid"], signal.SIGKILL)
    assert up.finish() == 1
    assert "page exited 4 times within 60s" in up.output
    assert "see " in up.output
    ports_free(stack_env)
