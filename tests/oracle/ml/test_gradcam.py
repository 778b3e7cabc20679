"""Grad-CAM on the CI-sized model: the evidence for "malignant" lies on the malignant focus the
generator drew into benign tissue."""

from pathlib import Path

import numpy as np
from PIL import Image

from oracle.ml import checkpoint
from oracle.ml.card import ModelCard
from oracle.ml.data.synth import synth_focus
from oracle.ml.gradcam import MAX_SIDE, explain, mass_inside, overlay_png
from oracle.ml.train import TrainConfig

FOCI, SHARE = 24, 0.25
BAR = 0.5  # "mostly": more than half the map's mass on a focus covering a quarter of the image


def test_the_map_lies_mostly_on_the_malignant_focus(trained: ModelCard, ci_config: TrainConfig) -> None:
    loaded = checkpoint.load(ci_config.out)
    rng = np.random.default_rng(11)
    inside = []
    for _ in range(FOCI):
        image, mask = synth_focus(rng, share=SHARE)
        cam = explain(loaded.members, image, positive=True)
        assert cam.shape == mask.shape
        assert cam.min() >= 0.0
        assert cam.max() == 1.0
        inside.append(mass_inside(cam, mask))
    mean = float(np.mean(inside))
    print(
        f"\nGrad-CAM mass on the malignant focus ({FOCI} synthetic foci, {SHARE:.0%} of each image, "
        f"seed 11): mean {mean:.3f}, lowest {min(inside):.3f}; chance {SHARE:.2f}"
    )
    assert mean >= BAR
    assert min(inside) > SHARE


def test_the_mass_share_is_the_energy_inside_the_mask() -> None:
    cam = np.zeros((4, 4))
    cam[0, 0], cam[3, 3] = 3.0, 1.0
    mask = np.zeros((4, 4), dtype=bool)
    mask[:2, :2] = True
    assert mass_inside(cam, mask) == 0.75
    assert mass_inside(np.zeros((4, 4)), mask) == 0.0


def test_the_overlay_is_an_8_bit_grey_png_of_the_map(tmp_path: Path) -> None:
    cam = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    (tmp_path / "heat.png").write_bytes(overlay_png(cam))
    with Image.open(tmp_path / "heat.png") as image:
        assert (image.mode, image.size) == ("L", (4, 3))
        pixels = np.asarray(image)
    assert pixels[0, 0] == 0
    assert pixels[-1, -1] == 255


def test_a_large_image_gets_a_map_of_bounded_size(trained: ModelCard, ci_config: TrainConfig) -> None:
    loaded = checkpoint.load(ci_config.out)
    image, _ = synth_focus(np.random.default_rng(12))
    huge = image.resize((4 * image.width, 4 * image.height))
    cam = explain(loaded.members, huge, positive=True)
    assert cam.shape == (round(MAX_SIDE * huge.height / huge.width), MAX_SIDE)
