"""The input gate (oracle/gate.py): what is plainly not H&E tissue is refused, with the check that
refused it named, and the held-out patients' synthetic tissue passes."""

import pickle

import numpy as np
import numpy.typing as npt
import pytest
import skimage.data

from oracle.gate import NotTissue, check_tissue
from oracle.ml.data.synth import PatientStyle, synth_image
from oracle.settings import GateLimits

Pixels = npt.NDArray[np.uint8]
MAX_FALSE_REFUSALS = 0.02


def rgb(image: npt.NDArray[np.generic]) -> Pixels:
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def photo(name: str) -> Pixels:
    """One of the photographs inside scikit-image's wheel (nothing is downloaded)."""
    return rgb(getattr(skimage.data, name)())


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (300, 400)) -> Pixels:
    return np.full((*size, 3), colour, np.uint8)


def checkerboard(a: tuple[int, int, int], b: tuple[int, int, int], square: int = 16) -> Pixels:
    rows, cols = np.indices((320, 480)) // square
    return np.where(((rows + cols) % 2 == 0)[..., None], np.array(a, np.uint8), np.array(b, np.uint8))


def noisy(colour: tuple[int, int, int], sd: float, seed: int) -> Pixels:
    """`colour` as a camera sees it: with sensor noise."""
    pixels = np.array(colour, np.float32) + np.random.default_rng(seed).normal(0, sd, (460, 700, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


PINK, PURPLE = (235, 175, 205), (95, 48, 135)
NOT_TISSUE: dict[str, tuple[Pixels, str]] = {
    # photographs
    "astronaut": (photo("astronaut"), "stain"),
    "coffee": (photo("coffee"), "stain"),
    "chelsea (a cat)": (photo("chelsea"), "stain"),
    "rocket": (photo("rocket"), "stain"),
    "hubble deep field": (photo("hubble_deep_field"), "stain"),
    "retina (fundus photograph)": (photo("retina"), "stain"),
    "camera man (grey)": (photo("camera"), "tissue"),
    "coins (grey)": (photo("coins"), "tissue"),
    # another stain: immunohistochemistry (DAB brown and hematoxylin)
    "immunohistochemistry": (photo("immunohistochemistry"), "stain"),
    # solid colours and drawings
    "blue square": (solid((0, 0, 255)), "flat"),
    "H&E pink, flat": (solid(PINK), "flat"),
    "black": (solid((0, 0, 0)), "flat"),
    "white": (solid((255, 255, 255)), "flat"),
    "black and white checkerboard": (checkerboard((0, 0, 0), (255, 255, 255)), "flat"),
    "pink and purple checkerboard": (checkerboard(PINK, PURPLE), "flat"),
    "logo": (photo("logo"), "flat"),
    # noise
    "colour noise": (np.random.default_rng(1).integers(0, 256, (460, 700, 3), dtype=np.uint8), "stain"),
    "grey noise": (rgb(np.random.default_rng(2).integers(0, 256, (460, 700), dtype=np.uint8)), "tissue"),
    # blank slides, and one stain alone
    "blank slide": (noisy((242, 240, 244), 3, 3), "tissue"),
    "blank slide, dim": (noisy((200, 198, 205), 4, 4), "tissue"),
    "eosin alone": (noisy(PINK, 5, 5), "stain"),
    # too small to be a field of view
    "1x1": (solid(PINK, (1, 1)), "size"),
    "8x8": (rgb(np.random.default_rng(6).integers(0, 256, (8, 8, 3), dtype=np.uint8)), "size"),
    "tissue, 40 pixels high": (
        np.asarray(synth_image(np.random.default_rng(7), True, PatientStyle.draw(np.random.default_rng(8))))[
            :40
        ],
        "size",
    ),
}


@pytest.mark.parametrize("name", NOT_TISSUE)
def test_what_is_not_tissue_is_refused_with_its_reason(name: str) -> None:
    pixels, check = NOT_TISSUE[name]
    with pytest.raises(NotTissue) as refused:
        check_tissue(pixels)
    assert refused.value.check == check, str(refused.value)
    assert str(refused.value).startswith(f"not tissue ({check}): ")
    assert refused.value.reason.name == "NOT_TISSUE"


def test_held_out_synthetic_tissue_passes() -> None:
    """Patients the models never saw (seeds no training run uses): 60 patients x 5 images."""
    rng = np.random.default_rng(20_261_203)
    refused = []
    total = 0
    for patient in range(60):
        style = PatientStyle.draw(rng)
        for _ in range(5):
            total += 1
            try:
                check_tissue(np.asarray(synth_image(rng, patient % 2 == 0, style)))
            except NotTissue as exc:
                refused.append(str(exc))
    rate = len(refused) / total
    print(f"\ninput gate: {len(refused)} of {total} held-out synthetic tissue images refused ({rate:.1%})")
    assert rate <= MAX_FALSE_REFUSALS, refused


def test_limits_are_settings() -> None:
    """An operator can move a line (HISTOCHAIN_GATE__MIN_SIDE=…); the gate follows it."""
    pixels = np.asarray(
        synth_image(np.random.default_rng(9), False, PatientStyle.draw(np.random.default_rng(10)))
    )
    check_tissue(pixels)
    with pytest.raises(NotTissue, match=r"\(size\): 700x460 pixels; a field of view needs 500"):
        check_tissue(pixels, GateLimits(min_side=500))
    with pytest.raises(NotTissue, match=r"\(tissue\): 0% of the image is stained tissue"):
        check_tissue(pixels, GateLimits(min_saturation=255))


def test_a_refusal_survives_the_trip_from_a_sandbox_worker() -> None:
    """The gate runs in the sandbox's worker processes: its verdict comes back pickled."""
    refused = NotTissue("flat", "16 colours make up 100% of the image")
    back = pickle.loads(pickle.dumps(refused))
    assert (type(back), back.check, str(back)) == (NotTissue, "flat", str(refused))
