"""Figures of a training run and a comparison, written as PNG files."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray
from PIL import Image
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

from oracle.ml.card import Calibration, ModelCard
from oracle.ml.data.breakhis import Sample


def curves(history: Sequence[dict[str, float]], path: Path) -> None:
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        ax.plot(epochs, [h[f"train_{metric}"] for h in history], marker="o", label="training")
        ax.plot(epochs, [h[f"val_{metric}"] for h in history], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def roc_curves(y: NDArray[Any], probabilities: dict[str, NDArray[Any]], path: Path) -> None:
    """ROC curves on the same test images (a run's one model, or every model compared), one plot."""
    fig, ax = plt.subplots(figsize=(6, 6))
    for name, p in probabilities.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC, test patients' images")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusions(
    y: NDArray[Any],
    probabilities: dict[str, NDArray[Any]],
    thresholds: dict[str, float],
    labels: Sequence[str],
    path: Path,
) -> None:
    """One confusion matrix per model, side by side, each at its own card's threshold."""
    cols = min(4, len(probabilities))
    rows = -(-len(probabilities) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 3.2, rows * 3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, p) in zip(axes.flat, probabilities.items(), strict=False):
        matrix = confusion_matrix(y, (p >= thresholds[name]).astype(int), labels=list(range(len(labels))))
        ax.axis("on")
        _matrix(ax, matrix, labels, 11)
        ax.set_title(name, fontsize=9)
    fig.supxlabel("predicted")
    fig.supylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reliability(
    y: NDArray[Any], raw: NDArray[Any], calibrated: NDArray[Any], calibration: Calibration, path: Path
) -> None:
    """Reliability diagram of the test patients' images: observed positive rate against mean
    predicted P per bin, before and after temperature scaling."""
    fig, ax = plt.subplots(figsize=(5, 5))
    edges = np.linspace(0, 1, calibration.bins + 1)
    for probs, name, scores in (
        (raw, "raw", calibration.before["test"]),
        (calibrated, f"T = {calibration.temperature:.2f}", calibration.after["test"]),
    ):
        which = np.minimum((probs * calibration.bins).astype(int), calibration.bins - 1)
        used = [b for b in range(calibration.bins) if (which == b).any()]
        ax.plot(
            [probs[which == b].mean() for b in used],
            [y[which == b].mean() for b in used],
            marker="o",
            label=f"{name}: ECE {scores.ece:.3f}, Brier {scores.brier:.3f}",
        )
    ax.plot(edges[[0, -1]], edges[[0, -1]], linestyle="--", color="grey", label="perfectly calibrated")
    ax.set_xlabel("mean predicted P(malignant)")
    ax.set_ylabel("observed share malignant")
    ax.set_title("Reliability, test patients' images")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _matrix(ax: Any, matrix: NDArray[Any], labels: Sequence[str], fontsize: int) -> None:
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="black", fontsize=fontsize)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)


def confusion(y: NDArray[Any], predicted: NDArray[Any], labels: Sequence[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    _matrix(ax, confusion_matrix(y, predicted, labels=list(range(len(labels)))), labels, 12)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def grid(
    paths: Sequence[Path],
    y: NDArray[Any],
    p: NDArray[Any],
    threshold: float,
    labels: Sequence[str],
    path: Path,
) -> None:
    count = min(16, len(paths))
    cols = 4
    rows = max(1, -(-count // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 3, rows * 2.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, range(count), strict=False):
        with Image.open(paths[i]) as image:
            ax.imshow(image.convert("RGB"))
        predicted = int(p[i] >= threshold)
        ax.set_title(
            f"pred {labels[predicted]} ({p[i]:.2f})\ntrue {labels[int(y[i])]}",
            fontsize=8,
            color="green" if predicted == y[i] else "red",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def bars(rows: Sequence[dict[str, Any]], path: Path) -> None:
    names = [r["model"] for r in rows]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, metric in zip(
        axes.flat, ("roc_auc", "accuracy", "loss", "precision", "recall", "f1"), strict=True
    ):
        ax.bar(names, [r[metric] for r in rows], color="tab:purple")
        ax.set_title(metric)
        ax.tick_params(axis="x", rotation=30)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_figures(
    out: Path,
    card: ModelCard,
    history: Sequence[dict[str, float]],
    test: Sequence[Sample],
    y: NDArray[Any],
    p: NDArray[Any],
) -> None:
    curves(history, out / "curves.png")
    roc_curves(y, {card.name: p}, out / "roc.png")
    confusion(y, (p >= card.threshold).astype(int), card.labels, out / "confusion.png")
    by_class = [np.flatnonzero(y == label)[:8] for label in range(len(card.labels))]
    shown = [int(i) for pair in zip(*by_class, strict=False) for i in pair]
    grid(
        [test[i].path for i in shown], y[shown], p[shown], card.threshold, card.labels, out / "test-grid.png"
    )
