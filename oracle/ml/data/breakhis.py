"""Reading BreakHis: its folder layout and file names, or a plain class-folder layout.

BreakHis names encode everything a split needs, e.g. ``SOB_M_DC-14-2523-400-010.png``:
procedure (SOB), class (B/M), tumour type, year, patient id, magnification, sequence.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from oracle.errors import HistochainError

LABELS = ("benign", "malignant")
MAGNIFICATIONS = (40, 100, 200, 400)
TUMOUR_TYPES = {
    "benign": {"A": "adenosis", "F": "fibroadenoma", "PT": "phyllodes_tumor", "TA": "tubular_adenoma"},
    "malignant": {
        "DC": "ductal_carcinoma",
        "LC": "lobular_carcinoma",
        "MC": "mucinous_carcinoma",
        "PC": "papillary_carcinoma",
    },
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}

NAME = re.compile(
    r"^(?P<procedure>[A-Z]+)_(?P<cls>[BM])_(?P<type>[A-Z]+)-(?P<year>\d{2})-(?P<patient>[A-Za-z0-9]+)"
    r"-(?P<mag>\d+)-(?P<seq>\d+)\.png$"
)


class DatasetError(HistochainError):
    """A data folder or file name does not look like what it claims to be."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int
    patient: str
    tumour_type: str | None = None
    magnification: int | None = None
    sequence: int | None = None

    @property
    def label_name(self) -> str:
        return LABELS[self.label]


def parse_name(name: str) -> dict[str, str | int]:
    """Fields of a BreakHis file name; the patient id is ``<year>-<id>`` as the slides name it."""
    match = NAME.match(name)
    if match is None:
        raise DatasetError(f"{name!r} is not a BreakHis image name (like SOB_B_A-14-22549AB-400-001.png)")
    label = "benign" if match["cls"] == "B" else "malignant"
    if match["type"] not in TUMOUR_TYPES[label]:
        raise DatasetError(f"{name!r}: tumour type {match['type']!r} is not a {label} type of BreakHis")
    return {
        "label": LABELS.index(label),
        "tumour_type": match["type"],
        "year": int(match["year"]),
        "patient": f"{match['year']}-{match['patient']}",
        "magnification": int(match["mag"]),
        "sequence": int(match["seq"]),
    }


def _breakhis_root(root: Path) -> Path | None:
    for candidate in (root, root / "BreaKHis_v1", root / "BreaKHis_v1" / "histology_slides" / "breast"):
        breast = candidate if candidate.name == "breast" else candidate / "histology_slides" / "breast"
        if (breast / "benign").is_dir() or (breast / "malignant").is_dir():
            return breast
    return None


def scan(root: Path, magnification: int | None = 400) -> list[Sample]:
    """Every image under `root`, BreakHis layout if it is one, else ``<class>/[<patient>/]*.png``.

    With the plain layout an image without a patient folder is its own patient.
    """
    if not root.is_dir():
        raise DatasetError(f"{root}: no such data folder")
    if magnification is not None and magnification not in MAGNIFICATIONS:
        raise DatasetError(f"magnification must be one of {MAGNIFICATIONS}, not {magnification}")
    breast = _breakhis_root(root)
    samples = _scan_breakhis(breast, magnification) if breast else _scan_class_folders(root)
    if not samples:
        raise DatasetError(f"{root}: no images found (magnification {magnification}X)")
    return sorted(samples, key=lambda s: str(s.path))


def _scan_breakhis(breast: Path, magnification: int | None) -> list[Sample]:
    samples = []
    for path in breast.rglob("*.png"):
        fields = parse_name(path.name)
        folder_label = next((p for p in path.relative_to(breast).parts if p in LABELS), None)
        if folder_label is not None and LABELS.index(folder_label) != fields["label"]:
            raise DatasetError(
                f"{path}: the name says {LABELS[int(fields['label'])]}, the folder {folder_label}"
            )
        if magnification is not None and fields["magnification"] != magnification:
            continue
        samples.append(
            Sample(
                path=path,
                label=int(fields["label"]),
                patient=str(fields["patient"]),
                tumour_type=str(fields["tumour_type"]),
                magnification=int(fields["magnification"]),
                sequence=int(fields["sequence"]),
            )
        )
    return samples


def _scan_class_folders(root: Path) -> list[Sample]:
    samples = []
    for label, name in enumerate(LABELS):
        folder = root / name
        if not folder.is_dir():
            continue
        for path in _images(folder.rglob("*")):
            relative = path.relative_to(folder)
            patient = relative.parts[0] if len(relative.parts) > 1 else path.stem
            samples.append(Sample(path=path, label=label, patient=f"{name}/{patient}"))
    if not samples:
        raise DatasetError(f"{root}: neither BreakHis nor {'/'.join(LABELS)} class folders")
    return samples


def _images(paths: Iterable[Path]) -> list[Path]:
    return [p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
