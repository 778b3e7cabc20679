"""BreakHis names and layouts, and the plain class-folder layout."""

from pathlib import Path

import pytest
from PIL import Image

from oracle.ml.data.breakhis import DatasetError, parse_name, scan
from oracle.ml.data.synth import synthesize


@pytest.mark.parametrize(
    ("name", "label", "tumour", "patient", "magnification", "sequence"),
    [
        ("SOB_B_A-14-22549AB-400-001.png", 0, "A", "14-22549AB", 400, 1),
        ("SOB_M_DC-14-2523-400-010.png", 1, "DC", "14-2523", 400, 10),
        ("SOB_B_F-14-9133-40-001.png", 0, "F", "14-9133", 40, 1),
        ("SOB_B_PT-14-21998AB-100-005.png", 0, "PT", "14-21998AB", 100, 5),
        ("SOB_B_TA-14-13200-200-012.png", 0, "TA", "14-13200", 200, 12),
        ("SOB_M_LC-14-12204-400-015.png", 1, "LC", "14-12204", 400, 15),
        ("SOB_M_MC-14-13418DE-100-003.png", 1, "MC", "14-13418DE", 100, 3),
        ("SOB_M_PC-15-190EF-40-011.png", 1, "PC", "15-190EF", 40, 11),
    ],
)
def test_parses_real_breakhis_names(name, label, tumour, patient, magnification, sequence):
    fields = parse_name(name)
    assert fields["label"] == label
    assert fields["tumour_type"] == tumour
    assert fields["patient"] == patient
    assert fields["magnification"] == magnification
    assert fields["sequence"] == sequence


@pytest.mark.parametrize(
    "name",
    [
        "SOB_X_A-14-22549AB-400-001.png",
        "SOB_B_DC-14-2523-400-010.png",
        "SOB_B_A-14-22549AB-400.png",
        "image.png",
    ],
)
def test_rejects_what_is_not_a_breakhis_name(name):
    with pytest.raises(DatasetError, match="BreakHis"):
        parse_name(name)


def test_scans_the_breakhis_layout_with_a_magnification_filter(tmp_path: Path):
    synthesize(tmp_path, 4, 2, seed=1, magnification=400, progress=False)
    synthesize(tmp_path, 4, 1, seed=2, magnification=40, progress=False)
    at_400 = scan(tmp_path)
    assert len(at_400) == 8
    assert {s.magnification for s in at_400} == {400}
    assert {s.label for s in at_400} == {0, 1}
    assert len({s.patient for s in at_400}) == 4
    assert len(scan(tmp_path / "BreaKHis_v1", magnification=40)) == 4
    assert len(scan(tmp_path, magnification=None)) == 12


def test_name_and_folder_must_agree(tmp_path: Path):
    synthesize(tmp_path, 2, 1, seed=1, progress=False)
    benign = next(tmp_path.rglob("SOB_B_*.png"))
    target = Path(str(benign.parent).replace("/benign/", "/malignant/"))
    target.mkdir(parents=True)
    benign.rename(target / benign.name)
    with pytest.raises(DatasetError, match="the name says benign, the folder malignant"):
        scan(tmp_path)


def test_scans_plain_class_folders(tmp_path: Path):
    for label, patient in (("benign", "p1"), ("benign", "p1"), ("malignant", None)):
        folder = tmp_path / label / patient if patient else tmp_path / label
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(folder / f"{len(list(folder.iterdir()))}.png")
    samples = scan(tmp_path)
    assert [(s.label, s.patient) for s in samples] == [(0, "benign/p1"), (0, "benign/p1"), (1, "malignant/0")]


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_unusable_folders_fail_clearly(tmp_path: Path, make: str):
    root = tmp_path / "data"
    if make == "empty":
        root.mkdir()
    with pytest.raises(
        DatasetError, match="no such data folder" if make == "missing" else "neither BreakHis"
    ):
        scan(root)
