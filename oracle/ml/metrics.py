"""Classification metrics with bootstrap 95 % intervals, at image level and patient level."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

from oracle.ml.card import EPS

METRICS = ("roc_auc", "accuracy", "loss", "precision", "recall", "f1")
CHUNK = 128  # bootstrap resamples computed at once


def log_loss(y: NDArray[Any], p: NDArray[Any]) -> NDArray[np.float64]:
    """Binary log loss along the last axis, probabilities clipped to [EPS, 1 - EPS] (sklearn's
    `log_loss(y, p, labels=[0, 1])` on the clipped values)."""
    clipped = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    losses: NDArray[np.float64] = np.where(np.asarray(y) == 1, np.log(clipped), np.log(1 - clipped))
    mean: NDArray[np.float64] = -losses.mean(axis=-1)
    return mean


def _rows(y: NDArray[Any], p: NDArray[Any], threshold: float) -> dict[str, NDArray[np.float64]]:
    """Every metric of each row of (R, N) labels and probabilities at once: the bootstrap's
    thousand resamples in a few array operations, where sklearn's per-call checks took 44 s of an
    85 s training run. Zero divisions give 0 (precision, recall, F1), one class gives NaN (ROC-AUC);
    tests/oracle/ml/test_evaluate.py checks each against sklearn."""
    positive = y == 1
    predicted = p >= threshold
    tp = np.sum(predicted & positive, axis=1)
    fp = np.sum(predicted & ~positive, axis=1)
    fn = np.sum(~predicted & positive, axis=1)
    pos, n = positive.sum(axis=1), y.shape[1]
    neg = n - pos
    ranks = rankdata(p, axis=1)  # ties share their mean rank: Mann-Whitney's U
    u = np.sum(np.where(positive, ranks, 0.0), axis=1) - pos * (pos + 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "roc_auc": np.where((pos > 0) & (neg > 0), u / (pos * neg), np.nan),
            "accuracy": np.mean(predicted == positive, axis=1),
            "loss": log_loss(y, p),
            "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
            "recall": np.where(tp + fn > 0, tp / (tp + fn), 0.0),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
        }


def point(y: NDArray[Any], p: NDArray[Any], threshold: float) -> dict[str, float]:
    """ROC-AUC is NaN when only one class is present."""
    return {
        name: float(v[0]) for name, v in _rows(np.asarray(y)[None], np.asarray(p)[None], threshold).items()
    }


def with_intervals(
    y: NDArray[Any], p: NDArray[Any], threshold: float, reps: int = 1000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Each metric's value and its percentile bootstrap 95 % interval (resampling with replacement;
    resamples with a single class are skipped for ROC-AUC)."""
    rng = np.random.default_rng(seed)
    y, p = np.asarray(y), np.asarray(p)
    values = point(y, p, threshold)
    chunks = []
    for start in range(0, reps, CHUNK):  # memory bounded by CHUNK resamples, whatever the reps
        idx = rng.integers(0, len(y), (min(CHUNK, reps - start), len(y)))
        chunks.append(_rows(y[idx], p[idx], threshold))
    out = {}
    for name in METRICS:
        draws = np.concatenate([chunk[name] for chunk in chunks]) if chunks else np.empty(0)
        kept = draws[~np.isnan(draws)]
        lo, hi = np.percentile(kept, [2.5, 97.5]) if kept.size else (np.nan, np.nan)
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
