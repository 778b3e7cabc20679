"""A child process of the dev stack: started with its log in a file (and, when asked, its warnings
and errors, or with `verbose` every line, echoed with its name in front), ready when a probe says
so, stopped with SIGTERM (then SIGKILL)."""

import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from oracle.errors import HistochainError

# A plain-text line worth a person's attention (a traceback, a panic); JSON lines say their level.
NOTABLE = re.compile(r"error|warn|traceback|exception|panic|fatal|critical", re.IGNORECASE)
NOTABLE_LEVELS = frozenset({"warning", "error", "critical"})


class PortInUseError(HistochainError):
    """The port a dev service should listen on is already taken."""


class ProcessStartError(HistochainError):
    """A dev service exited or did not become ready in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (for tests and benchmarks; someone may take it before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"{host}:{port} is already in use; stop what holds it or choose another port"
            ) from exc


START_TIMEOUT = 120.0
"""A loaded machine starts the oracle (torch, a checkpoint) in well over 30 s: two suites at once
on 2 cores took longer than that, so the bound is for a hung child, not a slow one."""


class ManagedProcess:
    """Subclasses say how to start (`command`) and how to tell it is ready (`probe`)."""

    name = "process"

    def __init__(self, host: str, port: int, log_file: Path) -> None:
        self.host, self.port, self.log_file = host, port, log_file
        self.verbose = False  # echo every line, not only warnings and errors
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def command(self) -> Sequence[str]:
        raise NotImplementedError

    def probe(self) -> bool:
        """True once the service answers; raising ProcessStartError aborts the start."""
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        return None

    def quiet(self, line: str) -> bool:
        """Lines kept out of the console even when verbose (they still reach the log file)."""
        return not line.strip()

    def notable(self, line: str) -> bool:
        """Whether `line` reaches a quiet console: a JSON log line at warning or above, or a plain
        line that names an error (access lines and anvil's transaction blocks stay in the log)."""
        try:
            entry = json.loads(line)
        except ValueError:
            return NOTABLE.search(line) is not None
        return isinstance(entry, dict) and entry.get("level") in NOTABLE_LEVELS

    def echoes(self, line: str) -> bool:
        return not self.quiet(line) and (self.verbose or self.notable(line))

    @property
    def exit_code(self) -> int | None:
        """None while running (or never started), else how it ended."""
        return None if self._proc is None else self._proc.poll()

    def start(self, timeout: float = START_TIMEOUT, echo: Callable[[str], None] | None = None) -> None:
        """`echo`, when given, receives each output line as "name | line" besides the log file.
        `timeout` bounds only a child that lives and never answers: one that exits fails at once."""
        ensure_port_free(self.host, self.port)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = list(self.command())
        if echo is None:
            with self.log_file.open("ab") as log:
                self._proc = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, env=self.environment()
                )
        else:
            self._proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.environment()
            )
            assert self._proc.stdout is not None
            threading.Thread(target=self._relay, args=(self._proc.stdout, echo), daemon=True).start()
        self._wait_ready(timeout)

    def _relay(self, stream: IO[bytes], echo: Callable[[str], None]) -> None:
        with self.log_file.open("ab") as log:
            for raw in iter(stream.readline, b""):
                log.write(raw)
                log.flush()
                line = raw.decode(errors="replace").rstrip()
                if self.echoes(line):
                    echo(f"{self.name:>6} | {line}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ProcessStartError(
                    f"{self.name} exited with code {self._proc.returncode}; see {self.log_file}"
                )
            try:
                if self.probe():
                    return
            except ProcessStartError:
                self.stop()
                raise
            except Exception as exc:  # noqa: BLE001 - any other failure means "not up yet"
                last_error = exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        self.stop()
        raise ProcessStartError(
            f"{self.name} did not answer on {self.url} within {timeout:.0f}s "
            f"(last probe: {last_error}); see {self.log_file}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
