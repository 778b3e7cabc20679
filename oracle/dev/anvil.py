"""The dev chain: an anvil process with its state kept on disk between runs."""

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from web3 import HTTPProvider, Web3

from oracle.errors import HistochainError, ToolchainError

# anvil's well-known test mnemonic: its accounts are public dev keys, never for real funds.
ANVIL_TEST_MNEMONIC = "test test test test test test test test test test test junk"


class PortInUseError(HistochainError):
    """The port a dev service should listen on is already taken."""


class ChainStartError(HistochainError):
    """anvil exited or did not answer in time."""


def ensure_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"{host}:{port} is already in use; stop what holds it or choose another port"
            ) from exc


class Anvil:
    """Runs anvil until stopped; `state_file` keeps the chain across restarts."""

    def __init__(self, host: str, port: int, chain_id: int, state_file: Path, log_file: Path) -> None:
        self.host, self.port, self.chain_id = host, port, chain_id
        self.state_file, self.log_file = state_file, log_file
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        executable = shutil.which("anvil")
        if executable is None:
            raise ToolchainError("anvil is not on PATH; run scripts/setup")
        ensure_port_free(self.host, self.port)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = [
            executable,
            "--host", self.host,
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--mnemonic", ANVIL_TEST_MNEMONIC,
            "--state", str(self.state_file),
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        w3 = Web3(HTTPProvider(self.url, request_kwargs={"timeout": 2}))
        deadline = time.monotonic() + timeout
        delay = 0.05
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ChainStartError(f"anvil exited with code {self._proc.returncode}; see {self.log_file}")
            try:
                answered = w3.eth.chain_id
            except Exception:  # noqa: BLE001 - any failure means "not up yet"
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            if answered != self.chain_id:
                raise ChainStartError(f"{self.url} answers chain id {answered}, expected {self.chain_id}")
            return
        self.stop()
        raise ChainStartError(
            f"anvil did not answer on {self.url} within {timeout:.0f}s; see {self.log_file}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM lets anvil dump its state to `state_file` before it exits."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> "Anvil":
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
