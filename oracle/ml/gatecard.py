"""The input gate's part of a model card: the limits it was checked with, what its statistics
measured on the training images, and the share of held-out tissue it refuses.

The gate (oracle/gate.py) is the deployment's: one set of limits for every model an oracle serves.
Training measures the same statistics on the model's own data, so a card shows whether that data
sits well inside the limits (a real-data set that the default limits would refuse says so here,
before any patient meets the refusal), and the false refusal rate on the validation and test
patients is a number on the card, not a hope."""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import numpy as np
from PIL import Image

from oracle.gate import NotTissue, TissueStats, judge, measure
from oracle.ml.data.breakhis import Sample
from oracle.ml.data.split import Split
from oracle.settings import GateLimits

MEASURED = ("flat", "tissue", "he_hue", "eosin", "hematoxylin", "focus")
PERCENTILES = ("p01", "p50", "p99")
PER_SPLIT = 100


def _percentiles(values: Sequence[float]) -> list[float]:
    return [float(v) for v in np.percentile(values, [1, 50, 99])]


def _screen(sample: Sample, limits: GateLimits) -> tuple[TissueStats, str | None]:
    with Image.open(sample.path) as image:
        pixels = np.asarray(image.convert("RGB"))
    stats = measure(pixels, limits.min_saturation)
    try:
        judge(stats, limits)
    except NotTissue as refusal:
        return stats, refusal.check
    return stats, None


def screen(samples: Sequence[Sample], limits: GateLimits) -> list[tuple[TissueStats, str | None]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda s: _screen(s, limits), samples))


def summary(
    split: Split, limits: GateLimits | None = None, per_split: int = PER_SPLIT, seed: int = 0
) -> dict[str, Any]:
    """The gate's card section: limits, training statistics (1st, 50th, 99th percentiles) and the
    share of each split's images refused, with the checks that refused them; on a seeded sample
    of at most `per_split` images of each split (the gate reads every pixel a few times)."""
    limits = limits or GateLimits()
    out: dict[str, Any] = {
        "limits": limits.model_dump(mode="json"),
        "sample": {"per_split": per_split, "seed": seed},
        "refused": {},
        "refused_by": {},
    }
    for part in ("train", "validation", "test"):
        samples = list(getattr(split, part))
        if len(samples) > per_split:
            chosen = np.random.default_rng(seed).choice(len(samples), per_split, replace=False)
            samples = [samples[i] for i in sorted(chosen)]
        screened = screen(samples, limits)
        checks = [check for _, check in screened if check]
        out["refused"][part] = len(checks) / len(screened) if screened else 0.0
        out["refused_by"][part] = {c: checks.count(c) for c in sorted(set(checks))}
        if part == "train":
            stats = [asdict(s) for s, _ in screened]
            out["training"] = {
                name: dict(zip(PERCENTILES, _percentiles([s[name] for s in stats]), strict=True))
                for name in MEASURED
            }
    return out
