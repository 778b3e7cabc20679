"""Patient-level splits: no patient's images in two splits, ever; stratified by class; seeded."""

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from oracle.ml.data.breakhis import DatasetError, Sample

# The seed paper's proportions: 54 % train, 13.6 % validation, 32.4 % test.
PAPER_PROPORTIONS = (0.54, 0.136, 0.324)


@dataclass(frozen=True)
class Split:
    train: tuple[Sample, ...]
    validation: tuple[Sample, ...]
    test: tuple[Sample, ...]

    def patients(self, part: str) -> list[str]:
        return sorted({s.patient for s in getattr(self, part)})


def patient_labels(samples: Sequence[Sample]) -> dict[str, int]:
    """A patient's class is its images' majority class (BreakHis has one patient under two types)."""
    votes: dict[str, Counter[int]] = defaultdict(Counter)
    for sample in samples:
        votes[sample.patient][sample.label] += 1
    return {patient: counts.most_common(1)[0][0] for patient, counts in votes.items()}


def split_by_patient(
    samples: Sequence[Sample], seed: int, proportions: tuple[float, float, float] = PAPER_PROPORTIONS
) -> Split:
    """Each class's patients are shuffled with `seed` and cut by `proportions` (largest remainder),
    so every split keeps the class balance of patients and no patient crosses a split."""
    if len(proportions) != 3 or any(p < 0 for p in proportions) or abs(sum(proportions) - 1) > 1e-6:
        raise DatasetError(
            f"split proportions must be three non-negative numbers summing to 1, got {proportions}"
        )
    labels = patient_labels(samples)
    rng = random.Random(seed)  # noqa: S311 - a reproducible shuffle, not a secret
    assignment: dict[str, int] = {}
    for label in sorted(set(labels.values())):
        patients = sorted(p for p, lab in labels.items() if lab == label)
        rng.shuffle(patients)
        counts = _allocate(len(patients), proportions)
        start = 0
        for part, count in enumerate(counts):
            for patient in patients[start : start + count]:
                assignment[patient] = part
            start += count
    parts: tuple[list[Sample], list[Sample], list[Sample]] = ([], [], [])
    for sample in samples:
        parts[assignment[sample.patient]].append(sample)
    return Split(tuple(parts[0]), tuple(parts[1]), tuple(parts[2]))


def _allocate(n: int, proportions: tuple[float, float, float]) -> list[int]:
    """Largest-remainder rounding of n * proportions that sums to n."""
    raw = [n * p for p in proportions]
    counts = [int(r) for r in raw]
    by_remainder = sorted(range(3), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return counts
