"""BreakHis names and layouts, and the plain class-folder layout."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from oracle.cli import main
from oracle.ml.card import ModelCard
from oracle.ml.data.breakhis import DatasetError, parse_name, scan
from oracle.ml.data.synth import synth_png, synthesize


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


# Real BreakHis patients (folder SOB_<class>_<type>_<year>-<id>), as the archive names them.
REAL_PATIENTS = {
    ("benign", "adenosis", "A"): ["14-22549AB", "14-29960AB"],
    ("benign", "fibroadenoma", "F"): ["14-9133", "14-14134"],
    ("benign", "phyllodes_tumor", "PT"): ["14-21998AB", "14-29315EF"],
    ("benign", "tubular_adenoma", "TA"): ["14-13200", "14-16184"],
    ("malignant", "ductal_carcinoma", "DC"): ["14-2523", "14-10926"],
    ("malignant", "lobular_carcinoma", "LC"): ["14-12204", "14-15570"],
    ("malignant", "mucinous_carcinoma", "MC"): ["14-13418DE", "14-18842D"],
    ("malignant", "papillary_carcinoma", "PC"): ["15-190EF", "14-9146"],
}


def miniature_breakhis(root: Path) -> Path:
    """BreakHis's download layout in miniature: BreaKHis_v1/histology_slides/breast/<class>/SOB/
    <type>/SOB_<C>_<T>_<patient>/<mag>X/SOB_<C>_<T>-<patient>-<mag>-<seq>.png, two 400X images and
    one 40X image per patient (the pixels are synthetic: only the tree and the names are BreakHis's)."""
    rng = np.random.default_rng(5)
    breast = root / "BreaKHis_v1" / "histology_slides" / "breast"
    for (label, folder, code), patients in REAL_PATIENTS.items():
        letter = label[0].upper()
        for patient in patients:
            for magnification, count in ((400, 2), (40, 1)):
                where = (
                    breast / label / "SOB" / folder / f"SOB_{letter}_{code}_{patient}" / f"{magnification}X"
                )
                where.mkdir(parents=True, exist_ok=True)
                for seq in range(1, count + 1):
                    name = f"SOB_{letter}_{code}-{patient}-{magnification}-{seq:03d}.png"
                    (where / name).write_bytes(synth_png(rng, label == "malignant"))
    return root


def test_train_reads_the_breakhis_download_layout(tmp_path: Path):
    root = miniature_breakhis(tmp_path / "download")
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            *("train", "--model", "basecnn", "--data", str(root), "--out", str(out)),
            *("--epochs", "1", "--image-size", "32", "--bootstrap", "10", "--magnification", "400"),
        ],
    )
    assert result.exit_code == 0, result.output
    card = ModelCard.load(out / "model-card.json")
    splits = card.data["patients"]
    every = {p for patients in REAL_PATIENTS.values() for p in patients}
    assert set(splits["train"]) | set(splits["validation"]) | set(splits["test"]) == every
    assert sum(card.data["images"].values()) == 2 * len(every)  # 400X only
    assert card.data["provenance"].startswith("user-supplied")
    assert card.data["magnification"] == 400
