"""Patient-level splits: a property test over random data sets."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle.ml.data.breakhis import DatasetError, Sample
from oracle.ml.data.split import PAPER_PROPORTIONS, split_by_patient


@st.composite
def datasets(draw):
    patients = draw(st.integers(min_value=2, max_value=60))
    samples = []
    for index in range(patients):
        label = draw(st.integers(min_value=0, max_value=1))
        for image in range(draw(st.integers(min_value=1, max_value=5))):
            samples.append(Sample(Path(f"/d/{index}/{image}.png"), label, f"p{index}"))
    return samples


@settings(max_examples=200, deadline=None)
@given(samples=datasets(), seed=st.integers(min_value=0, max_value=2**32))
def test_no_patient_in_two_splits_and_classes_stay_balanced(samples, seed):
    split = split_by_patient(samples, seed)
    parts = [set(split.patients(p)) for p in ("train", "validation", "test")]
    assert not parts[0] & parts[1]
    assert not parts[0] & parts[2]
    assert not parts[1] & parts[2]
    assert parts[0] | parts[1] | parts[2] == {s.patient for s in samples}
    assert sorted(split.train + split.validation + split.test, key=str) == sorted(samples, key=str)
    for label in (0, 1):
        patients = {s.patient for s in samples if s.label == label}
        for part, share in zip(parts, PAPER_PROPORTIONS, strict=True):
            assert abs(len(part & patients) - share * len(patients)) < 1
    assert split_by_patient(samples, seed) == split


def test_seed_changes_the_split():
    samples = [Sample(Path(f"/{i}.png"), i % 2, f"p{i}") for i in range(40)]
    assert split_by_patient(samples, 1).test != split_by_patient(samples, 2).test


def test_a_patient_under_two_labels_stays_in_one_split():
    samples = [Sample(Path(f"/{i}.png"), i % 2, f"p{i}") for i in range(20)]
    samples += [Sample(Path("/x1.png"), 0, "shared"), Sample(Path("/x2.png"), 1, "shared")]
    split = split_by_patient(samples, 3)
    holding = [p for p in ("train", "validation", "test") if "shared" in split.patients(p)]
    assert len(holding) == 1


def test_bad_proportions_fail_clearly():
    samples = [Sample(Path("/a.png"), 0, "p")]
    with pytest.raises(DatasetError, match="summing to 1"):
        split_by_patient(samples, 0, (0.5, 0.5, 0.5))
