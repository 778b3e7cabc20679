"""Super-resolution throughput: 4x upscaling by SRResNet, per input size, as the oracle runs it.

    .venv/bin/python -m bench.sr [--sizes 64,128,256,512] [--min-seconds 2]

For each square LR input size, on the CPU and on CUDA when there is one:
  model   `oracle.ml.sr.infer.upscale` alone: the tiled forward pass (tiles of the card's 160 LR px
          with 40 px of context), 8-bit in and out;
  oracle  what the daemon does per image: `oracle.daemon.stages.upscale.render` (the same
          upscale, then the output PNG and the consistency measure).
Images/s, input and output megapixels/s, and the process's peak RSS. The input is a real
photograph (scikit-image's coffee) resized to the size; weights are random in the checkpoint's
architecture (throughput does not depend on them). 512 px is past the default card's limit
(65,536 px), to show what tiling costs on larger inputs. Prints a table and writes
bench/results/sr.json and sr.md; there are no targets here.
"""

import argparse
import json
import sys
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.common import RESULTS, describe, finish, machine, peak_rss_mib, reset_peak_rss, timed
from oracle.daemon.stages.upscale import render
from oracle.ml.sr.card import SrCard, SrInput
from oracle.ml.sr.data import bundled, load_rgb
from oracle.ml.sr.infer import Upscaler, upscale
from oracle.ml.sr.models import SRResNet

SIZES = (64, 128, 256, 512)
WARMUP_SECONDS = 0.5
HEADER = (
    f"{'device':<8}{'LR side':>8}{'path':>8}{'calls':>7}{'median ms':>11}{'img/s':>9}"
    f"{'in MP/s':>9}{'out MP/s':>10}{'peak MiB':>10}"
)


def row_text(row: dict[str, Any]) -> str:
    return (
        f"{row['device']:<8}{row['side']:>8}{row['path']:>8}{row['calls']:>7}{row['median_ms']:>11.1f}"
        f"{row['images_per_s']:>9.2f}{row['input_mp_per_s']:>9.3f}{row['output_mp_per_s']:>10.2f}"
        f"{row['peak_rss_mib']:>10.0f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument(
        "--min-seconds", type=float, default=2.0, help="timed seconds per measurement, at least"
    )
    parser.add_argument("--min-iterations", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    info = machine()
    devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    photo = Image.fromarray(load_rgb(bundled(["coffee.png"])[0]))
    torch.manual_seed(0)
    spec = SrInput()
    card = SrCard(name="bench", architecture="srresnet", weights_file="-", weights_sha256="0" * 64)
    rows: list[dict[str, Any]] = []
    print(HEADER, flush=True)
    for device_name in devices:
        device = torch.device(device_name)
        model = SRResNet().to(device).eval()
        upscaler = Upscaler(card, model, device)
        for side in sizes:
            image = photo.resize((side, side), Image.Resampling.BICUBIC)
            pixels = np.asarray(image)
            for path, step in (
                ("model", lambda: upscale(model, pixels, device, spec.tile, spec.margin)),  # noqa: B023
                ("oracle", lambda: render(upscaler, image)),  # noqa: B023
            ):
                reset_peak_rss()
                timing = timed(step, 1, args.min_seconds, args.min_iterations, WARMUP_SECONDS)
                row = {
                    "device": device_name,
                    "side": side,
                    "path": path,
                    "calls": timing.iterations,
                    "median_ms": timing.median_ms,
                    "images_per_s": timing.images_per_s,
                    "input_mp_per_s": timing.images_per_s * side * side / 1e6,
                    "output_mp_per_s": timing.images_per_s * 16 * side * side / 1e6,
                    "peak_rss_mib": peak_rss_mib(),
                }
                rows.append(row)
                print(row_text(row), flush=True)
    info = finish(info)
    method = (
        "SRResNet (16 blocks, 1.55 M parameters), random weights, fp32 (the oracle's precision), "
        f"tiles of {spec.tile} LR px with {spec.margin} px of context. Input: scikit-image's coffee.png "
        "resized (bicubic) to each square side. model: `upscale` alone; oracle: `render` (upscale, PNG at "
        f"compression level 6, consistency PSNR). Warm-up calls excluded ({WARMUP_SECONDS} s), then at least "
        f"{args.min_seconds} s and {args.min_iterations} calls. Peak RSS: the process's VmHWM, reset per row."
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sr.json").write_text(
        json.dumps({"machine": info, "method": method, "rows": rows}, indent=2) + "\n"
    )
    table = "\n".join([HEADER, *map(row_text, rows)])
    report = f"# Super-resolution throughput\n\n{describe(info)}\n\n{method}\n\n```\n{table}\n```\n"
    (RESULTS / "sr.md").write_text(report)
    print(f"\n{report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
