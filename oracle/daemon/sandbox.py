"""Untrusted work in worker processes with hard limits (pebble): CPU seconds per task (the kernel
ends a worker past them), a wall-clock backstop WALL_FACTOR times longer (a loaded machine makes
honest work slow, and slowness must not count against an image), and a cap on each worker's
address space. A worker past a limit, or dead (a crash, memory), is killed and replaced, and the
task ends in a `Strike`, which the daemon turns into a verdict after a few; a cancelled task (the
daemon stopping) kills its worker too, so stopping never waits for hostile bytes. Workers are
spawned, not forked: the daemon holds threads and a model."""

import asyncio
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Literal, TypeVar

from pebble import ProcessExpired, ProcessPool

from oracle.daemon.untrusted import Opened, open_image, start_worker, verify_answer, within_cpu
from oracle.errors import HistochainError
from oracle.imaging import InputPolicy
from oracle.settings import GateLimits

T = TypeVar("T")
WALL_FACTOR = 4
StrikeKind = Literal["time", "crash"]


class Strike(HistochainError):
    """The sandbox killed the worker that ran this task: past its deadline, or dead."""

    def __init__(self, kind: StrikeKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Sandbox:
    def __init__(
        self,
        workers: int,
        time_limit: float,
        memory_limit: int,
        identity: str | None,
        gate: GateLimits | None = None,
        wall_limit: float | None = None,
    ) -> None:
        """`time_limit`: CPU seconds a task may use; `wall_limit`: seconds it may take (default
        WALL_FACTOR times `time_limit`). `gate`: every image opened must pass the input gate
        (oracle/gate.py) with these limits."""
        self.time_limit = time_limit
        self.wall_limit = wall_limit or WALL_FACTOR * time_limit
        self.pool = ProcessPool(
            max_workers=workers,
            initializer=start_worker,
            initargs=(identity, memory_limit, gate),
            context=multiprocessing.get_context("spawn"),
        )

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        future = self.pool.schedule(
            within_cpu, args=(self.time_limit, function, *args), timeout=self.wall_limit
        )
        try:
            result: T = await asyncio.wrap_future(future)
        except FutureTimeout:
            raise Strike("time", f"killed after {self.wall_limit:.0f} s") from None
        except ProcessExpired as exc:
            if exc.exitcode == -signal.SIGXCPU:
                raise Strike("time", f"killed after {self.time_limit:.0f} s of CPU time") from None
            raise Strike("crash", f"its worker died (exit code {exc.exitcode})") from None
        return result

    async def verify(self, cid: str, raw: bool, body: bytes, max_bytes: int) -> bytes:
        return await self.run(verify_answer, cid, raw, body, max_bytes)

    async def open(
        self,
        data: bytes,
        owner: str,
        chain_id: int,
        registry: str,
        accept_plaintext: bool,
        policy: InputPolicy,
    ) -> Opened:
        return await self.run(open_image, data, owner, chain_id, registry, accept_plaintext, policy)

    def close(self) -> None:
        """Kills the workers now, whatever they are doing."""
        self.pool.stop()  # type: ignore[no-untyped-call]
        self.pool.join(timeout=5)
