"""The SR papers' protocol on any folder of HR images: modcrop to x4, bicubic x1/4 LR, each
method's x4 output, Y-PSNR and SSIM inside a 4-px border, against bicubic on the same images;
one table like Ledig et al.'s Table 2, and a figure of crops (LR | bicubic | models | HR)."""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from oracle.ml.names import SR_SCALE as SCALE
from oracle.ml.sr import checkpoint
from oracle.ml.sr.data import Pixels, downscale, load_rgb, modcrop, upscale_bicubic
from oracle.ml.sr.infer import upscale
from oracle.ml.sr.metrics import measure

BICUBIC = "bicubic"
PROTOCOL = (
    f"HR cropped to multiples of {SCALE}; LR by bicubic x1/{SCALE} (Pillow); PSNR and SSIM (Gaussian "
    f"11x11, sigma 1.5) on BT.601 Y in [16, 235], {SCALE} px shaved off every border"
)


@dataclass
class SrReport:
    """Per image, each method's (PSNR, SSIM); `outputs` keeps the first images' pictures."""

    methods: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Pixels]] = field(default_factory=list)

    def means(self) -> dict[str, dict[str, float]]:
        return {
            m: {k: float(np.mean([row[m][k] for row in self.rows])) for k in ("psnr", "ssim")}
            for m in self.methods
        }

    def card_fields(self, method: str) -> dict[str, Any]:
        means = self.means()
        return {
            "metrics": {
                "psnr_y": means[method]["psnr"],
                "ssim_y": means[method]["ssim"],
                "bicubic_psnr_y": means[BICUBIC]["psnr"],
                "bicubic_ssim_y": means[BICUBIC]["ssim"],
            },
            "evaluation": {
                "protocol": PROTOCOL,
                "images": [
                    {"image": r["image"], "size": r["size"], method: r[method], BICUBIC: r[BICUBIC]}
                    for r in self.rows
                ],
            },
        }

    def json(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL, "methods": self.methods, "means": self.means(), "images": self.rows}

    def table(self) -> str:
        head = f"{'image':<24}{'size':>10}" + "".join(f"{m[:22]:>24}" for m in self.methods)
        lines = [PROTOCOL, head, " " * 34 + "".join(f"{'PSNR dB / SSIM':>24}" for _ in self.methods)]
        for row in [*self.rows, {"image": "mean", "size": "", **self.means()}]:
            cells = "".join(f"{row[m]['psnr']:>15.2f} / {row[m]['ssim']:.4f}" for m in self.methods)
            lines.append(f"{row['image']:<24}{row['size']:>10}{cells}")
        return "\n".join(lines)


def evaluate_checkpoints(
    checkpoints: Sequence[Path], paths: Sequence[Path], device: torch.device | str = "cpu", keep: int = 0
) -> SrReport:
    """Bicubic and each checkpoint on every image of `paths`, in order; keeps the pictures of the
    first `keep` images (for `figure`)."""
    device = torch.device(device)
    models = [checkpoint.load(c, device) for c in checkpoints]
    report = SrReport([BICUBIC, *(card.name for card, _ in models)])
    for index, path in enumerate(paths):
        hr = modcrop(load_rgb(path), SCALE)
        lr = downscale(hr, SCALE)
        outputs = {BICUBIC: upscale_bicubic(lr, SCALE)}
        for card, model in models:
            outputs[card.name] = upscale(model, lr, device, card.input.tile, card.input.margin)
        row: dict[str, Any] = {"image": path.name, "size": f"{hr.shape[1]}x{hr.shape[0]}"}
        for method, output in outputs.items():
            psnr, ssim = measure(output, hr, SCALE)
            row[method] = {"psnr": round(psnr, 4), "ssim": round(ssim, 5)}
        report.rows.append(row)
        if index < keep:
            report.outputs.append({"LR": lr, **outputs, "HR": hr})
    return report


def figure(report: SrReport, path: Path, crop: int = 128) -> None:
    """One row per kept image: the same `crop`x`crop` HR window (at the image's centre) in every
    column; the LR column is enlarged by pixel repetition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = ["LR", *report.methods, "HR"]
    rows = report.outputs
    fig, axes = plt.subplots(
        len(rows), len(columns), figsize=(2.2 * len(columns), 2.4 * len(rows)), squeeze=False
    )
    for r, (outputs, meta) in enumerate(zip(rows, report.rows, strict=False)):
        h, w = outputs["HR"].shape[:2]
        side = min(crop, h, w) // SCALE * SCALE
        y, x = (h - side) // 2 // SCALE * SCALE, (w - side) // 2 // SCALE * SCALE
        for c, name in enumerate(columns):
            image = outputs[name]
            if name == "LR":
                window = image[y // SCALE : (y + side) // SCALE, x // SCALE : (x + side) // SCALE]
                window = window.repeat(SCALE, 0).repeat(SCALE, 1)
                title = "LR (x4 nearest)"
            else:
                window = image[y : y + side, x : x + side]
                title = (
                    name
                    if name == "HR"
                    else f"{name}\n{meta[name]['psnr']:.2f} dB / {meta[name]['ssim']:.3f}"
                )
            axes[r][c].imshow(window)
            axes[r][c].set_title(title, fontsize=7)
            axes[r][c].axis("off")
        axes[r][0].text(-8, side / 2, meta["image"], rotation=90, va="center", ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report: SrReport, out: Path) -> None:
    """sr-eval.json, sr-eval.txt and, when pictures were kept, sr-crops.png under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "sr-eval.json").write_text(json.dumps(report.json(), indent=2, ensure_ascii=False) + "\n")
    (out / "sr-eval.txt").write_text(report.table() + "\n")
    if report.outputs:
        figure(report, out / "sr-crops.png")
