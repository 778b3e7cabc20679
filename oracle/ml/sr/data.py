"""Super-resolution data, all offline: the real photographs bundled inside scikit-image's wheel
(split once into an evaluation set, held out from training, and a training set), synthetic
H&E-like fields, or any folder of HR images; LR images are made by bicubic x4 downsampling.

Held out for evaluation (6, like Set5/Set14): astronaut, camera, chelsea, coffee, ihc (an
immunohistochemistry field), rocket. Training (13): brick, cell, clock_motion, coins, grass,
gravel, hubble_deep_field, moon, motorcycle_left and motorcycle_right (a stereo pair, so on one
side of the split), page, retina, text. Left out as not photographs: chessboard, color, horse,
logo, microaneurysms (102 px), the LFW faces and the multipage TIFFs."""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from oracle.errors import HistochainError
from oracle.imaging import to_rgb8
from oracle.ml.data.synth import PatientStyle, synth_image

EVALUATION = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "ihc.png", "rocket.jpg")
TRAINING = (
    "brick.png",
    "cell.png",
    "clock_motion.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "moon.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "page.png",
    "retina.jpg",
    "text.png",
)
SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}

Pixels = npt.NDArray[np.uint8]


class SrDataError(HistochainError):
    """Super-resolution images are missing or unreadable."""


def bundled(names: Sequence[str]) -> list[Path]:
    """Paths of scikit-image's bundled photographs (in its wheel: nothing is downloaded)."""
    found = importlib.util.find_spec("skimage")
    if found is None or not found.submodule_search_locations:
        raise SrDataError("scikit-image is not installed: its bundled photographs are the SR data")
    folder = Path(next(iter(found.submodule_search_locations))) / "data"
    paths = [folder / name for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SrDataError(f"not in this scikit-image's wheel: {', '.join(missing)}")
    return paths


def folder(root: Path) -> list[Path]:
    """Every image file directly in `root`, sorted (Set5, Set14, BSD100 … as distributed)."""
    paths = sorted(p for p in root.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
    if not paths:
        raise SrDataError(f"{root}: no images ({', '.join(sorted(SUFFIXES))})")
    return paths


def load_rgb(path: Path) -> Pixels:
    try:
        with Image.open(path) as image:
            return np.array(to_rgb8(image))
    except (OSError, ValueError, HistochainError) as exc:
        raise SrDataError(f"{path}: not a readable image: {exc}") from exc


def synthetic(count: int, seed: int) -> list[Pixels]:
    """`count` synthetic H&E-like fields (700x460), half of them malignant-looking."""
    rng = np.random.default_rng(seed)
    return [np.asarray(synth_image(rng, i % 2 == 1, PatientStyle.draw(rng))) for i in range(count)]


def modcrop(hr: Pixels, scale: int) -> Pixels:
    """The top-left part whose sides are multiples of `scale` (the usual SR protocol)."""
    h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
    if h == 0 or w == 0:
        raise SrDataError(f"an image of {hr.shape[1]}x{hr.shape[0]} is smaller than x{scale}")
    return hr[:h, :w]


def downscale(hr: Pixels, scale: int) -> Pixels:
    """Bicubic x1/`scale` (Pillow's, antialiased like MATLAB's imresize; the two differ slightly)."""
    h, w = hr.shape[:2]
    return np.asarray(Image.fromarray(hr).resize((w // scale, h // scale), Image.Resampling.BICUBIC))


def upscale_bicubic(lr: Pixels, scale: int) -> Pixels:
    """The baseline every SR table compares against."""
    h, w = lr.shape[:2]
    return np.asarray(Image.fromarray(lr).resize((w * scale, h * scale), Image.Resampling.BICUBIC))


class CropSampler:
    """Random `crop`x`crop` HR crops, flipped and turned by right angles, with their bicubic
    x1/`scale` LR twins, as float batches in [0, 1]. Images are drawn by `weights` (default: each
    alike; by area, one 2-megapixel retina would outweigh ten other photographs)."""

    def __init__(
        self,
        images: Sequence[Pixels],
        crop: int,
        scale: int,
        seed: int,
        weights: Sequence[float] | None = None,
    ) -> None:
        if crop % scale:
            raise SrDataError(f"the crop ({crop}) must be a multiple of the scale ({scale})")
        given = list(weights) if weights is not None else [1.0] * len(images)
        usable = [(im, w) for im, w in zip(images, given, strict=True) if min(im.shape[:2]) >= crop and w > 0]
        if not usable:
            raise SrDataError(f"no training image is at least {crop} px on both sides")
        self.images, self.crop, self.scale = [im for im, _ in usable], crop, scale
        chance = np.array([w for _, w in usable], dtype=np.float64)
        self.weights = chance / chance.sum()
        self.rng = np.random.default_rng(seed)

    def one(self) -> tuple[Pixels, Pixels]:
        image = self.images[self.rng.choice(len(self.images), p=self.weights)]
        y = int(self.rng.integers(0, image.shape[0] - self.crop + 1))
        x = int(self.rng.integers(0, image.shape[1] - self.crop + 1))
        hr = np.rot90(image[y : y + self.crop, x : x + self.crop], int(self.rng.integers(4)))
        if self.rng.random() < 0.5:
            hr = hr[:, ::-1]
        hr = np.ascontiguousarray(hr)
        return downscale(hr, self.scale), hr

    def batch(self, size: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """(LR, HR), each (N, 3, H, W)."""
        pairs = [self.one() for _ in range(size)]
        return _stack([lr for lr, _ in pairs]), _stack([hr for _, hr in pairs])

    def state(self) -> dict[str, object]:
        return dict(self.rng.bit_generator.state)

    def restore(self, state: dict[str, object]) -> None:
        self.rng.bit_generator.state = state


def _stack(images: Sequence[Pixels]) -> npt.NDArray[np.float32]:
    return np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
