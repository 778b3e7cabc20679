"""Classification metrics with bootstrap 95 % intervals, at image level and patient level."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score

METRICS = ("roc_auc", "accuracy", "loss", "precision", "recall", "f1")


def point(y: NDArray[Any], p: NDArray[Any], threshold: float) -> dict[str, float]:
    """ROC-AUC is NaN when only one class is present."""
    predicted = (p >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "accuracy": float(accuracy_score(y, predicted)),
        "loss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
    }


def with_intervals(
    y: NDArray[Any], p: NDArray[Any], threshold: float, reps: int = 1000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Each metric's value and its percentile bootstrap 95 % interval (resampling with replacement;
    resamples with a single class are skipped for ROC-AUC)."""
    rng = np.random.default_rng(seed)
    values = point(y, p, threshold)
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(reps):
        idx = rng.integers(0, len(y), len(y))
        for name, value in point(y[idx], p[idx], threshold).items():
            if not np.isnan(value):
                samples[name].append(value)
    out = {}
    for name in METRICS:
        draws = samples.get(name)
        lo, hi = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
        out[name] = {"value": values[name], "low": float(lo), "high": float(hi)}
    return out


def by_patient(
    patients: Sequence[str], y: NDArray[Any], p: NDArray[Any]
) -> tuple[list[str], NDArray[Any], NDArray[Any]]:
    """A patient's score is the mean of its images' probabilities; its label, its images' majority."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, patient in enumerate(patients):
        groups[patient].append(i)
    names = sorted(groups)
    labels = np.array([round(float(np.mean(y[groups[n]]))) for n in names])
    scores = np.array([float(np.mean(p[groups[n]])) for n in names])
    return names, labels, scores
