"""PostgreSQL and redis-server from Debian's packages as child processes, each in a folder of its
own on a loopback port: the distributed mode's stores for `dev up --workers N`, tests/distributed
and bench/scale.py. Production runs them as the operator sees fit (docs/OPERATIONS.md)."""

import glob
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from oracle.dev.process import START_TIMEOUT, ManagedProcess, ProcessStartError

POSTGRES_USER = "postgres"


def postgres_binary(name: str) -> str:
    """Debian keeps the server's programs in /usr/lib/postgresql/<version>/bin, off the PATH."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise ProcessStartError(f"{name} not found: install Debian's postgresql (./scripts/setup does)")
    return found


def _as_postgres() -> list[str]:
    """The server refuses to run as root: as root, it runs as the package's `postgres` user."""
    if os.geteuid() != 0:
        return []
    # setpriv execs (runuser would fork and stand between the server and its signals).
    return ["setpriv", f"--reuid={POSTGRES_USER}", f"--regid={POSTGRES_USER}", "--init-groups", "--"]


class Postgres(ManagedProcess):
    """One cluster in `folder` (created on first start), trust auth on loopback only."""

    name = "pg"

    def __init__(self, folder: Path, port: int, log_file: Path) -> None:
        super().__init__("127.0.0.1", port, log_file)
        self.folder = folder.resolve()  # the server changes into its data folder

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{POSTGRES_USER}@{self.host}:{self.port}/postgres"

    async def create_database(self, name: str) -> str:
        """A new empty database `name` (one per test or bench run); returns its URL."""
        import asyncpg

        admin = await asyncpg.connect(host=self.host, port=self.port, user=POSTGRES_USER, database="postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        return f"postgresql+asyncpg://{POSTGRES_USER}@{self.host}:{self.port}/{name}"

    def initialise(self) -> None:
        if (self.folder / "PG_VERSION").exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, POSTGRES_USER, POSTGRES_USER)
        subprocess.run(
            [
                *_as_postgres(), postgres_binary("initdb"),
                "-D", str(self.folder), "-U", POSTGRES_USER,
                "--auth=trust", "-E", "UTF8", "--no-sync",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip

    def start(self, timeout: float = START_TIMEOUT, echo: Callable[[str], None] | None = None) -> None:
        self.initialise()
        super().start(timeout, echo)

    def command(self) -> Sequence[str]:
        return [
            *_as_postgres(), postgres_binary("postgres"),
            "-D", str(self.folder), "-p", str(self.port), "-h", self.host, "-k", str(self.folder),
            # A dev and test store: durability traded for speed, like anvil's in-memory chain.
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ]  # fmt: skip

    def probe(self) -> bool:
        result = subprocess.run(
            [postgres_binary("pg_isready"), "-h", self.host, "-p", str(self.port), "-U", POSTGRES_USER],
            capture_output=True,
        )
        return result.returncode == 0

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT): SIGTERM would wait for every client to leave."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        super().stop(timeout)


class RedisServer(ManagedProcess):
    """redis-server with no persistence: the streams hold work in flight, PostgreSQL holds the jobs."""

    name = "redis"

    def __init__(self, folder: Path, port: int, log_file: Path) -> None:
        super().__init__("127.0.0.1", port, log_file)
        self.folder = folder.resolve()

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> Sequence[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ProcessStartError(
                "redis-server not found: install Debian's redis-server (./scripts/setup does)"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        return [
            binary, "--bind", self.host, "--port", str(self.port), "--dir", str(self.folder),
            "--save", "", "--appendonly", "no", "--protected-mode", "yes",
        ]  # fmt: skip

    async def flush(self) -> None:
        """Every key gone: the next test or bench run starts with no stream."""
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.url)
        try:
            await client.flushall()
        finally:
            await client.aclose()

    def probe(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
