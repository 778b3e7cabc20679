"""The synthetic set: BreakHis-shaped files whose classes differ in nuclear morphology."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oracle.ml.data.breakhis import parse_name, scan
from oracle.ml.data.synth import PatientStyle, synth_image, synthesize


def test_writes_breakhis_layout_names_and_size(tmp_path: Path):
    paths = synthesize(tmp_path, 4, 3, seed=5, progress=False)
    assert len(paths) == 12
    for path in paths:
        relative = path.relative_to(tmp_path).parts
        assert relative[:4] == ("BreaKHis_v1", "histology_slides", "breast", relative[3])
        assert relative[3] in {"benign", "malignant"}
        assert relative[4] == "SOB"
        assert relative[-2] == "400X"
        fields = parse_name(path.name)
        assert relative[-3] == f"SOB_{path.name[4]}_{fields['tumour_type']}_{fields['patient']}"
        with Image.open(path) as image:
            assert image.size == (700, 460)
            assert image.mode == "RGB"
    assert {s.label for s in scan(tmp_path)} == {0, 1}


def test_same_seed_same_images(tmp_path: Path):
    first = synthesize(tmp_path / "a", 2, 1, seed=9, progress=False)
    second = synthesize(tmp_path / "b", 2, 1, seed=9, progress=False)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


def dark_fraction(image: Image.Image) -> float:
    grey = np.asarray(image.convert("L"), dtype=float)
    return float((grey < 0.7 * np.median(grey)).mean())


def test_malignant_fields_hold_more_dark_nuclear_material_but_the_classes_overlap():
    rng = np.random.default_rng(0)
    benign, malignant = [], []
    for _ in range(12):
        style = PatientStyle.draw(rng)
        benign.append(dark_fraction(synth_image(rng, False, style)))
        malignant.append(dark_fraction(synth_image(rng, True, style)))
    assert np.mean(malignant) > 1.5 * np.mean(benign)
    assert max(benign) > min(malignant) * 0.8, "classes should not be separable by a single threshold margin"


@pytest.mark.parametrize(("patients", "images"), [(1, 1), (2, 0)])
def test_refuses_sets_that_cannot_be_split(tmp_path: Path, patients: int, images: int):
    with pytest.raises(ValueError, match="at least 2 patients"):
        synthesize(tmp_path, patients, images, progress=False)
