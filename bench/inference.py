"""Classifier throughput: the raw forward pass against the oracle's full path, per model and batch.

    .venv/bin/python -m bench.inference [--models basecnn,mobilenet_v3_small] [--batches 1,8,32]

For every model of the registry (default: all), on the CPU and on CUDA when there is one:
  raw   the forward pass alone, on preprocessed tensors already on the device (inference_mode);
  full  what the oracle does per batch: PNG bytes → `oracle.imaging.decode` → `Predictor.predict`
        (the card's resize and normalisation, then the forward pass), the daemon's own code.
Both run on the same synthetic 700x460 PNGs. Weights are random (untrained) in the real checkpoint
format: throughput does not depend on them, and nothing is downloaded. Each model runs in a fresh
process so that its peak RSS is its own. Warm-up calls are excluded and each measurement runs for
at least --min-seconds and --min-iterations calls, so slow models get fewer calls (the count is in
the table). Prints a table and writes bench/results/inference.json and inference.md; there are no
targets here (bench.oracle holds the end-to-end ones), so it exits 0 unless a model fails.
"""

import argparse
import json
import multiprocessing
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from bench.common import (
    MIB,
    RESULTS,
    Timing,
    describe,
    finish,
    machine,
    peak_rss_mib,
    random_checkpoint,
    reset_peak_rss,
    synthetic_pngs,
    timed,
)
from oracle.imaging import decode
from oracle.ml import checkpoint
from oracle.ml.inference import Predictor
from oracle.ml.models import REGISTRY, parameter_count
from oracle.ml.preprocess import normalise

BATCHES = (1, 8, 32)
WARMUP_SECONDS = 0.5


def raw_forward(predictor: Predictor, pngs: list[bytes]) -> Callable[[], None]:
    """A step that runs only the model on its preprocessed input, already on the device."""
    ((card, model),) = predictor.members
    (batch,) = predictor.resize([decode(data) for data in pngs])
    x = normalise(batch.to(predictor.device), card.preprocessing)
    cuda = predictor.device.type == "cuda"

    @torch.inference_mode()
    def step() -> None:
        model(x)
        if cuda:
            torch.cuda.synchronize()

    return step


def full_path(predictor: Predictor, pngs: list[bytes]) -> Callable[[], object]:
    """A step that runs the daemon's code from PNG bytes to probabilities."""
    return lambda: predictor.predict([decode(data) for data in pngs])


def measure_model(
    name: str, devices: list[str], batches: list[int], pngs: list[bytes], budget: tuple[float, int]
) -> list[dict[str, Any]]:
    """One model on every device and batch size; runs in its own process."""
    min_seconds, min_iterations = budget
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        random_checkpoint(name, Path(tmp))
        for device in devices:
            predictor = Predictor(checkpoint.load(Path(tmp), device), device)
            params = parameter_count(predictor.members[0][1])
            for batch in batches:
                images = pngs[:batch]
                reset_peak_rss()
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                raw = timed(
                    raw_forward(predictor, images), batch, min_seconds, min_iterations, WARMUP_SECONDS
                )
                full = timed(full_path(predictor, images), batch, min_seconds, min_iterations, WARMUP_SECONDS)
                cuda_peak = torch.cuda.max_memory_allocated() / MIB if device == "cuda" else None
                rows.append(row(name, params, device, raw, full, peak_rss_mib(), cuda_peak))
                print(table(rows[-1:], header=False), flush=True)
    return rows


def row(
    name: str, params: int, device: str, raw: Timing, full: Timing, rss: float, cuda_peak: float | None
) -> dict[str, Any]:
    return {
        "model": name,
        "parameters": params,
        "device": device,
        "batch": raw.batch,
        "raw_images_per_s": round(raw.images_per_s, 1),
        "full_images_per_s": round(full.images_per_s, 1),
        "full_over_raw": round(full.images_per_s / raw.images_per_s, 3),
        "raw_ms_per_batch_median": round(raw.median_ms, 2),
        "full_ms_per_batch_median": round(full.median_ms, 2),
        "raw_iterations": raw.iterations,
        "full_iterations": full.iterations,
        "peak_rss_mib": round(rss),
        "cuda_peak_mib": None if cuda_peak is None else round(cuda_peak),
    }


HEADER = (
    "| model | params | device | batch | raw img/s | full img/s | full/raw | raw ms/batch | full ms/batch "
    "| timed calls raw/full | peak RSS MiB | CUDA peak MiB |\n"
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def table(rows: list[dict[str, Any]], header: bool = True) -> str:
    lines = [HEADER] if header else []
    for r in rows:
        cuda = "" if r["cuda_peak_mib"] is None else f"{r['cuda_peak_mib']:,}"
        lines.append(
            f"| {r['model']} | {r['parameters'] / 1e6:.2f} M | {r['device']} | {r['batch']} "
            f"| {r['raw_images_per_s']:,.1f} | {r['full_images_per_s']:,.1f} | {r['full_over_raw']:.0%} "
            f"| {r['raw_ms_per_batch_median']:,.1f} | {r['full_ms_per_batch_median']:,.1f} "
            f"| {r['raw_iterations']}/{r['full_iterations']} | {r['peak_rss_mib']:,} | {cuda} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(REGISTRY), help="comma-separated registry names")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument(
        "--min-seconds", type=float, default=1.0, help="timed seconds per measurement, at least"
    )
    parser.add_argument("--min-iterations", type=int, default=3, help="timed calls per measurement, at least")
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in REGISTRY]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {', '.join(REGISTRY)}")
    batches = [int(b) for b in args.batches.split(",")]

    info = machine()
    devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    print(
        f"{len(models)} model(s) on {', '.join(devices)}; generating {max(batches)} synthetic PNGs",
        flush=True,
    )
    pngs = synthetic_pngs(max(batches), first_seed=0)
    print(HEADER, flush=True)
    rows: list[dict[str, Any]] = []
    # One process per model (spawned: torch and fork do not mix) so each peak RSS is that model's.
    context = multiprocessing.get_context("spawn")
    for name in models:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            budget = (args.min_seconds, args.min_iterations)
            rows += pool.submit(measure_model, name, devices, batches, pngs, budget).result()
    info = finish(info)

    method = (
        f"Weights random (untrained) in the checkpoint format; {len(pngs)} synthetic 700x460 PNGs "
        f"({sum(map(len, pngs)) / len(pngs) / 1024:.0f} KiB on average), batch b uses the first b. "
        "raw: the model's forward pass on preprocessed tensors already on the device (inference_mode). "
        "full: `oracle.imaging.decode` of the PNG bytes + `Predictor.predict` (resize, normalise, "
        "forward), as the daemon runs them. Warm-up calls excluded (at least one, "
        f"{WARMUP_SECONDS} s); then timed for at least {args.min_seconds} s and "
        f"{args.min_iterations} calls (the number of timed calls is in the table). Peak RSS is the "
        "model's process during that row's two measurements (VmHWM, reset before each row)."
    )
    RESULTS.mkdir(exist_ok=True)
    settings = {
        "min_seconds": args.min_seconds,
        "min_iterations": args.min_iterations,
        "warmup_seconds": WARMUP_SECONDS,
    }
    (RESULTS / "inference.json").write_text(
        json.dumps({"machine": info, "settings": settings, "method": method, "rows": rows}, indent=2) + "\n"
    )
    report = f"# Inference throughput\n\n{describe(info)}\n\n{method}\n\n{table(rows)}\n"
    (RESULTS / "inference.md").write_text(report)
    print(f"\n{report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
