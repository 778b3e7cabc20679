"""Evaluate a checkpoint on a data folder: image level and patient level, with bootstrap 95 % CIs."""

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from oracle.ml import checkpoint, metrics
from oracle.ml.data.breakhis import DatasetError, Sample, scan
from oracle.ml.inference import Predictor
from oracle.ml.samples import predict_samples

Part = Literal["test", "all"]


def select(samples: list[Sample], card_data: dict[str, Any], part: Part) -> list[Sample]:
    """The checkpoint's own test patients (from its card), or every sample."""
    if part == "all":
        return samples
    test_patients = set(card_data.get("patients", {}).get("test", []))
    if not test_patients:
        raise DatasetError("the model card names no test patients; evaluate with --split all")
    chosen = [s for s in samples if s.patient in test_patients]
    if not chosen:
        raise DatasetError("none of the checkpoint's test patients are in this data folder; use --split all")
    return chosen


def evaluate(
    checkpoint_path: Path,
    data: Path,
    part: Part = "test",
    magnification: int | None = 400,
    reps: int = 1000,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    loaded = checkpoint.load(checkpoint_path, torch.device(device))
    card = loaded.card
    samples = select(scan(data, magnification), card.data, part)
    p = predict_samples(Predictor(loaded, device), samples, progress=progress)
    y = np.array([s.label for s in samples])
    _, py, pp = metrics.by_patient([s.patient for s in samples], y, p)
    return {
        "checkpoint": str(checkpoint_path),
        "model": card.name,
        "model_id": "0x" + card.model_id.hex(),
        "split": part,
        "threshold": card.threshold,
        "images": len(samples),
        "patients": len(py),
        "image_level": metrics.with_intervals(y, p, card.threshold, reps),
        "patient_level": metrics.with_intervals(py, pp, card.threshold, reps),
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        f"{report['model']} ({report['model_id'][:18]}…), {report['split']} split: "
        f"{report['images']} images of {report['patients']} patients, threshold {report['threshold']}",
        "",
        "| metric | image level (95 % CI) | patient level (95 % CI) |",
        "|---|---|---|",
    ]
    for name in metrics.METRICS:
        cells = []
        for level in ("image_level", "patient_level"):
            m = report[level][name]
            cells.append(f"{m['value']:.3f} ({m['low']:.3f} to {m['high']:.3f})")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)
