"""Functions the sandbox tests run in its worker processes (they must be importable there)."""

import sys
import time
from pathlib import Path


def sleep(seconds: float, started: str | None = None) -> str:
    """Sleeps; touches the file `started` first, so a test knows a worker has the task."""
    if started is not None:
        Path(started).touch()
    time.sleep(seconds)
    return "woke"


def spin(seconds: float) -> str:
    """Burns CPU for `seconds` of this process's CPU time."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return "spun"


def hog(megabytes: int) -> int:
    return len(bytearray(megabytes << 20))


def loaded(*names: str) -> list[str]:
    return [name for name in names if name in sys.modules]


def crash() -> None:
    import os

    os._exit(3)


def core_dumps() -> tuple[tuple[int, int], int]:
    """This worker's core file limit and whether the kernel would dump it at all."""
    import ctypes
    import resource

    pr_get_dumpable = 3
    return resource.getrlimit(resource.RLIMIT_CORE), ctypes.CDLL(None).prctl(pr_get_dumpable, 0, 0, 0, 0)
