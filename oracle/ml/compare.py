"""Train and evaluate several models on one patient-level split, plus their ensemble: the seed
paper's Table 10 (ROC-AUC, accuracy, loss, precision, recall, F1) with parameters, inference
ms/image and the patient-level ROC-AUC's bootstrap 95 % interval, and the figures: every model's
ROC curve on one plot, their confusion matrices, and a prediction grid of the best model."""

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from oracle.errors import HistochainError
from oracle.ml import checkpoint, metrics, plots
from oracle.ml.data.breakhis import Sample, scan
from oracle.ml.data.split import split_by_patient
from oracle.ml.inference import Predictor
from oracle.ml.models import Weights, parameter_count
from oracle.ml.names import CLASSIFIERS
from oracle.ml.samples import predict_samples
from oracle.ml.train import TrainConfig, train


class CompareError(HistochainError):
    """A comparison asked for a model or weights that do not exist, or for nothing."""


@dataclass(frozen=True)
class Entry:
    """One model of a comparison: `name` or `name:imagenet` on the command line."""

    model: str
    weights: Weights = "none"

    @property
    def label(self) -> str:
        return self.model if self.weights == "none" else f"{self.model}:{self.weights}"

    @property
    def folder(self) -> str:
        return self.label.replace(":", "-")

    @classmethod
    def parse(cls, text: str) -> "Entry":
        model, _, weights = text.strip().partition(":")
        if model not in CLASSIFIERS:
            raise CompareError(f"unknown model {model!r}; choose from {', '.join(sorted(CLASSIFIERS))}")
        if weights not in ("", "none", "imagenet"):
            raise CompareError(f"{text!r}: weights are none or imagenet, not {weights!r}")
        return cls(model, "imagenet" if weights == "imagenet" else "none")


def parse_models(text: str) -> list[Entry]:
    entries = [Entry.parse(part) for part in text.split(",") if part.strip()]
    if not entries:
        raise CompareError("name at least one model")
    return entries


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


def compare(
    base: TrainConfig, entries: list[Entry], out: Path, train_models: bool = True
) -> list[dict[str, Any]]:
    """Trains (or, with `train_models` False, reuses) each entry's checkpoint under `out`, then
    evaluates all of them and their ensemble on the same test patients."""
    device = base.resolved_device()
    split = split_by_patient(scan(base.data, base.magnification), base.seed, base.proportions)
    test = list(split.test)
    y = np.array([s.label for s in test])
    patients = [s.patient for s in test]
    rows, folders, probabilities = [], [], {}
    for entry in entries:
        folder = out / entry.folder
        if train_models:
            train(base.model_copy(update={"model": entry.model, "weights": entry.weights, "out": folder}))
        elif not checkpoint.card_path(folder).is_file():
            raise CompareError(f"{folder}: no checkpoint to reuse; run with --train")
        folders.append(folder)
        row, probabilities[entry.label] = _evaluate(entry.label, folder, device, test, y, patients, base)
        rows.append(row)
    if len(entries) > 1:
        name = "ensemble-" + "-".join(e.folder for e in entries)
        checkpoint.save_ensemble(folders, out / "ensemble", name=name[:64].rstrip("-_."))
        row, probabilities["ensemble"] = _evaluate(
            "ensemble", out / "ensemble", device, test, y, patients, base
        )
        rows.append(row)
    (out / "compare.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "compare.md").write_text(table(rows) + "\n")
    plots.bars(rows, out / "compare.png")
    thresholds = {r["model"]: r["threshold"] for r in rows}
    plots.roc_curves(y, probabilities, out / "compare-roc.png")
    plots.confusions(y, probabilities, thresholds, ("benign", "malignant"), out / "compare-confusion.png")
    best = max(rows, key=lambda r: r["roc_auc"])["model"]
    p = probabilities[best]
    plots.grid(
        [s.path for s in test], y, p, thresholds[best], ("benign", "malignant"), out / "compare-grid.png"
    )
    return rows


def _evaluate(
    label: str,
    folder: Path,
    device: Any,
    test: list[Sample],
    y: NDArray[Any],
    patients: list[str],
    base: TrainConfig,
) -> tuple[dict[str, Any], NDArray[Any]]:
    loaded = checkpoint.load(folder, device)
    predictor = Predictor(loaded, device)
    p = predict_samples(predictor, test)
    threshold = loaded.card.threshold
    _, py, pp = metrics.by_patient(patients, y, p)
    patient_auc = metrics.with_intervals(py, pp, threshold, base.bootstrap, base.seed)["roc_auc"]
    row = {
        "model": label,
        **metrics.point(y, p, threshold),
        "patient_roc_auc": patient_auc,
        "threshold": threshold,
        "parameters": sum(parameter_count(m) for _, m in loaded.members),
        "ms_per_image": inference_ms_per_image(predictor, test),
        "image_size": [list(card.preprocessing.image_size) for card, _ in loaded.members],
        "epochs_run": loaded.card.training.get("epochs_run"),
        "device": str(predictor.device),
    }
    return row, p


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | ROC-AUC | accuracy | loss | precision | recall | F1 | patient ROC-AUC (95 % CI) "
        "| parameters | ms/image |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        ci = r["patient_roc_auc"]
        lines.append(
            f"| {r['model']} | {r['roc_auc']:.4f} | {r['accuracy']:.4f} | {r['loss']:.4f} | "
            f"{r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} | "
            f"{ci['value']:.3f} ({ci['low']:.3f} to {ci['high']:.3f}) | {r['parameters']:,} | "
            f"{r['ms_per_image']:.2f} |"
        )
    return "\n".join(lines)
