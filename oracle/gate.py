"""The input gate: is this decoded image an H&E-stained tissue section at all?

The classifiers were trained on H&E breast tissue and answer anything with confidence: a blue
square, a photograph, a blank slide. The gate refuses what is plainly not H&E tissue before any
model sees it, and says which check refused and why, in words; on chain the image fails as
NOT_TISSUE. Its checks, on the 8-bit RGB pixels:

- size: both sides at least `min_side` pixels (a field of view, not an icon);
- flat: a camera's image of tissue has no large areas of one exact colour; a drawing, a solid
  colour or a checkerboard is a few colours (the most common FLAT_COLOURS cover most pixels);
- tissue: the share of pixels that are stained (saturated enough: the empty slide is white to grey);
- stain: of the tissue, the share whose hue is H&E's, pink (eosin) to purple-blue (hematoxylin),
  and both stains present (a single flat colour, a DAB-brown immunostain or a photograph fail);
- focus: the variance of the Laplacian of the grey image (no structure, or out of focus).

Each statistic is linear in the pixels; the whole gate reads an image a few times over. Nothing
here imports torch: it runs in the sandbox's workers, on untrusted pixels."""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from oracle.chain.reasons import FailureReason
from oracle.imaging import ImageRejected
from oracle.settings import GateLimits

# Hue on PIL's 0-255 scale (360° = 256): eosin pink ~300-360°, hematoxylin purple-blue ~220-300°.
EOSIN_FROM, HEMATOXYLIN_FROM, RED_UNTIL = 300 * 256 // 360, 220 * 256 // 360, 20 * 256 // 360
SIDE = 512  # statistics are taken on the image reduced to at most this side
FLAT_COLOURS = 16


class NotTissue(ImageRejected):
    """The gate refused the image; `check` names the check, the message says why in words."""

    reason = FailureReason.NOT_TISSUE

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"not tissue ({check}): {detail}")
        self.check, self.detail = check, detail

    def __reduce__(self) -> tuple[type["NotTissue"], tuple[str, str]]:
        return NotTissue, (self.check, self.detail)  # raised in a sandbox worker, pickled back


@dataclass(frozen=True)
class TissueStats:
    width: int
    height: int
    flat: float
    tissue: float
    he_hue: float
    eosin: float
    hematoxylin: float
    focus: float


def measure(pixels: npt.NDArray[np.uint8], min_saturation: int) -> TissueStats:
    """The gate's statistics for an RGB image (H x W x 3, uint8); a pixel at least
    `min_saturation` saturated is stained."""
    height, width = pixels.shape[:2]
    image = Image.fromarray(pixels, "RGB")
    if max(width, height) > SIDE:
        image = image.reduce(max(1, max(width, height) // SIDE))
    rgb = np.asarray(image)
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    counts = np.unique(packed, return_counts=True)[1]
    flat = float(np.sort(counts)[-FLAT_COLOURS:].sum() / packed.size)
    hsv = np.asarray(image.convert("HSV"))
    hue, saturation = hsv[..., 0], hsv[..., 1]
    stained = saturation >= min_saturation  # the empty slide is white to grey
    count = int(stained.sum())
    tissue_hue = hue[stained]
    eosin = int(((tissue_hue >= EOSIN_FROM) | (tissue_hue <= RED_UNTIL)).sum())
    hematoxylin = int(((tissue_hue >= HEMATOXYLIN_FROM) & (tissue_hue < EOSIN_FROM)).sum())
    grey = image.convert("L")
    laplacian = grey.filter(ImageFilter.Kernel((3, 3), (0, 1, 0, 1, -4, 1, 0, 1, 0), scale=1, offset=128))
    lap = np.asarray(laplacian, dtype=np.float32)[1:-1, 1:-1]
    share = 1 / count if count else 0.0
    return TissueStats(
        width=width,
        height=height,
        flat=flat,
        tissue=count / stained.size,
        he_hue=(eosin + hematoxylin) * share,
        eosin=eosin * share,
        hematoxylin=hematoxylin * share,
        focus=float(lap.var()) if lap.size else 0.0,
    )


def check_tissue(pixels: npt.NDArray[np.uint8], limits: GateLimits | None = None) -> TissueStats:
    """The statistics of an image the gate lets through; `NotTissue` for one it refuses."""
    limits = limits or GateLimits()
    return judge(measure(pixels, limits.min_saturation), limits)


def judge(stats: TissueStats, limits: GateLimits) -> TissueStats:
    """`stats` if they pass every check, else `NotTissue` naming the first that fails."""
    if min(stats.width, stats.height) < limits.min_side:
        raise NotTissue(
            "size",
            f"{stats.width}x{stats.height} pixels; a field of view needs {limits.min_side} on each side",
        )
    if stats.flat > limits.max_flat:
        raise NotTissue(
            "flat",
            f"{FLAT_COLOURS} colours make up {stats.flat:.0%} of the image: a drawing or a solid colour, "
            "not a photograph of a section",
        )
    if stats.tissue < limits.min_tissue:
        raise NotTissue(
            "tissue",
            f"{stats.tissue:.0%} of the image is stained tissue, at least {limits.min_tissue:.0%} is needed "
            "(a blank slide, a grey or white picture)",
        )
    if stats.he_hue < limits.min_he_hue:
        raise NotTissue(
            "stain",
            f"{stats.he_hue:.0%} of the tissue has the pink-to-purple colour of H&E staining, at least "
            f"{limits.min_he_hue:.0%} is needed (another stain, or not a stained section)",
        )
    if min(stats.eosin, stats.hematoxylin) < limits.min_each_stain:
        raise NotTissue(
            "stain",
            f"only one stain: {stats.eosin:.0%} eosin pink, {stats.hematoxylin:.0%} hematoxylin purple "
            "(H&E tissue shows both)",
        )
    if stats.focus < limits.min_focus:
        raise NotTissue(
            "focus",
            f"too little structure or out of focus (Laplacian variance {stats.focus:.1f}, at least "
            f"{limits.min_focus:.1f} is needed)",
        )
    return stats
