"""What the benchmarks share: the machine they ran on, synthetic PNGs, random-weight checkpoints,
peak memory and an adaptive timer. Figures from a shared CPU only compare within one run."""

import asyncio
import os
import platform
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from oracle.daemon.app import run_daemon
from oracle.dev.anvil import Anvil
from oracle.dev.ipfs import IpfsNode
from oracle.dev.process import free_port
from oracle.ml import checkpoint
from oracle.ml.card import ModelCard
from oracle.ml.data.breakhis import LABELS
from oracle.ml.data.synth import synth_png
from oracle.ml.models import build, spec
from oracle.settings import Settings

RESULTS = Path(__file__).parent / "results"
MIB = 1 << 20


def machine() -> dict[str, Any]:
    """CPU, cores, memory, Python, torch and the load average now (call again at the end)."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line
    )
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(memory_kib / (1 << 20), 1),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
    }


def describe(info: dict[str, Any]) -> str:
    """One Markdown paragraph for a results file."""
    gpu = info["gpu"] or "none"
    return (
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, GPU {gpu}; "
        f"Python {info['python']}, torch {info['torch']} ({info['torch_threads']} threads). "
        f"Load average (1, 5, 15 min) at start {info['load_average_start']}, "
        f"at end {info['load_average_end']}."
    )


def finish(info: dict[str, Any]) -> dict[str, Any]:
    return info | {"load_average_end": [round(v, 2) for v in os.getloadavg()]}


def _png(seed: int) -> bytes:
    return synth_png(np.random.default_rng(seed), seed % 2 == 1)


def synthetic_pngs(count: int, first_seed: int) -> list[bytes]:
    """`count` distinct 700x460 synthetic H&E-like PNGs (alternately benign and malignant), made
    on every core: about 70 ms of CPU each."""
    with ProcessPoolExecutor(max_workers=len(os.sched_getaffinity(0))) as pool:
        return list(pool.map(_png, range(first_seed, first_seed + count), chunksize=8))


def random_checkpoint(architecture: str, out: Path, seed: int = 0) -> ModelCard:
    """An untrained model saved in the real checkpoint format (throughput does not depend on the
    weights, and nothing is downloaded); returns its card."""
    torch.manual_seed(seed)
    return checkpoint.save(
        build(architecture),
        out,
        {
            "name": f"bench-{architecture}".replace("_", "-"),
            "architecture": architecture,
            "labels": LABELS,
            "threshold": 0.5,
            "preprocessing": spec(architecture).preprocessing(),
            "training": {"weights_init": f"random (torch seed {seed}), untrained: for timing only"},
        },
    )


@contextmanager
def chain_and_node(work: Path) -> Iterator[tuple[Anvil, IpfsNode]]:
    """A fresh anvil (the dev chain id) and local IPFS node on free ports, state and logs under `work`."""
    chain_id = Settings.model_fields["chain_id"].default
    with (
        Anvil("127.0.0.1", free_port(), chain_id, work / "chain" / "state.json", work / "anvil.log") as anvil,
        IpfsNode(
            "127.0.0.1", free_port(), work / "ipfs", os.urandom(16).hex(), work / "ipfs.log", 8 << 20
        ) as ipfs,
    ):
        yield anvil, ipfs


def daemon_main(settings: Settings, role: str = "all") -> None:
    """A child process's target: the oracle daemon in `role` until SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await run_daemon(settings, stop, role)

    profile_dir = os.environ.get("BENCH_PROFILE_DIR")  # where does a daemon's CPU go
    if profile_dir is None:
        asyncio.run(main())
        return
    import cProfile

    with cProfile.Profile() as profile:
        asyncio.run(main())
    profile.dump_stats(Path(profile_dir) / f"{role}-{os.getpid()}.prof")


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets this process's VmHWM."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mib(pid: int | str = "self") -> float:
    """VmHWM: the most resident memory the process has held (since the last reset)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MIB
    raise RuntimeError(f"no VmHWM for process {pid}")


@dataclass(frozen=True)
class Timing:
    batch: int
    iterations: int
    seconds: float
    median_ms: float

    @property
    def images_per_s(self) -> float:
        return self.batch * self.iterations / self.seconds


def timed(
    step: Callable[[], object], batch: int, min_seconds: float, min_iterations: int, warmup_seconds: float
) -> Timing:
    """Warm-up calls (at least one, for `warmup_seconds`) are not counted; then `step` is timed
    until both `min_seconds` and `min_iterations` are reached, so slow models get fewer calls."""
    start = time.perf_counter()
    step()
    while time.perf_counter() - start < warmup_seconds:
        step()
    times: list[float] = []
    while sum(times) < min_seconds or len(times) < min_iterations:
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    return Timing(batch, len(times), sum(times), 1000 * float(np.median(times)))
