"""Train and evaluate several models on one split; the seed paper's Table 10 layout."""

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from oracle.ml import checkpoint, metrics, plots
from oracle.ml.data.breakhis import Sample, scan
from oracle.ml.data.split import split_by_patient
from oracle.ml.inference import Predictor
from oracle.ml.models import parameter_count
from oracle.ml.train import TrainConfig, predict_samples, train


def inference_ms_per_image(
    predictor: Predictor, samples: list[Sample], batch: int = 32, repeats: int = 3
) -> float:
    """Forward pass only (images already decoded and resized), median of `repeats`, batch of `batch`."""
    chosen = samples[:batch]
    images = []
    for sample in chosen:
        with Image.open(sample.path) as image:
            images.append(image.convert("RGB"))
    tensors = predictor.resize(images)
    predictor.forward(tensors)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.forward(tensors)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)) / len(chosen)


def compare(base: TrainConfig, models: list[str], out: Path) -> list[dict[str, Any]]:
    device = base.resolved_device()
    split = split_by_patient(scan(base.data, base.magnification), base.seed, base.proportions)
    test = list(split.test)
    y = np.array([s.label for s in test])
    rows, checkpoints = [], []
    for name in models:
        folder = out / name
        train(base.model_copy(update={"model": name, "out": folder}), resume=True)
        loaded = checkpoint.load(folder, device)
        checkpoints.append(folder)
        rows.append(
            _row(name, Predictor(loaded, device), test, y, sum(parameter_count(m) for _, m in loaded.members))
        )
    if len(models) > 1:
        checkpoint.save_ensemble(checkpoints, out / "ensemble", name="ensemble-" + "-".join(models)[:50])
        loaded = checkpoint.load(out / "ensemble", device)
        rows.append(
            _row(
                "ensemble",
                Predictor(loaded, device),
                test,
                y,
                sum(parameter_count(m) for _, m in loaded.members),
            )
        )
    (out / "compare.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "compare.md").write_text(table(rows) + "\n")
    plots.bars(rows, out / "compare.png")
    return rows


def _row(name: str, predictor: Predictor, test: list[Sample], y: NDArray[Any], params: int) -> dict[str, Any]:
    p = predict_samples(predictor, test)
    point = metrics.point(y, p, predictor.card.threshold)
    return {
        "model": name,
        "loss": point["loss"],
        "roc_auc": point["roc_auc"],
        "accuracy": point["accuracy"],
        "parameters": params,
        "ms_per_image": inference_ms_per_image(predictor, test),
        "device": str(predictor.device),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | loss | ROC-AUC | accuracy | parameters | inference ms/image |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['loss']:.4f} | {r['roc_auc']:.4f} | {r['accuracy']:.4f} | "
            f"{r['parameters']:,} | {r['ms_per_image']:.2f} |"
        )
    return "\n".join(lines)
