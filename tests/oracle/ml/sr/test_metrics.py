"""The SR papers' measures, held to scikit-image's reference implementations on fixed inputs."""

import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from oracle.ml.sr.data import bundled, load_rgb
from oracle.ml.sr.metrics import batch_psnr, luma, measure, psnr, shave, ssim


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s settings, as scikit-image spells them."""
    return float(
        structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
    )


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_rgb(bundled(["astronaut.png"])[0])[100:260, 120:300]


def test_luma_is_bt601_as_matlab_and_scikit_image_compute_it(photo: np.ndarray) -> None:
    assert np.allclose(luma(photo), rgb2ycbcr(photo)[..., 0], atol=1e-9)
    assert luma(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)
    assert luma(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)


@pytest.mark.parametrize("noise", [2.0, 12.0, 40.0])
def test_psnr_and_ssim_match_scikit_image(photo: np.ndarray, noise: float) -> None:
    rng = np.random.default_rng(int(noise))
    noisy = np.clip(photo + rng.normal(0, noise, photo.shape), 0, 255).astype(np.uint8)
    a, b = luma(noisy), luma(photo)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255), abs=1e-9)
    assert ssim(a, b) == pytest.approx(reference_ssim(a, b), abs=1e-9)


def test_identical_images_score_infinity_and_one(photo: np.ndarray) -> None:
    y = luma(photo)
    assert psnr(y, y) == math.inf
    assert ssim(y, y) == pytest.approx(1.0)


def test_the_border_is_shaved_before_measuring(photo: np.ndarray) -> None:
    """Differences inside the 4-px frame count for nothing; one pixel further in, they count."""
    framed = photo.copy()
    framed[:4] = 0
    framed[:, -4:] = 255
    assert measure(framed, photo, 4) == (math.inf, pytest.approx(1.0))
    inside = photo.copy()
    inside[4, 4] = 255 - inside[4, 4]
    assert measure(inside, photo, 4)[0] < math.inf
    assert shave(np.zeros((20, 30)), 4).shape == (12, 22)
    with pytest.raises(ValueError, match="nothing left"):
        shave(np.zeros((8, 30)), 4)
    with pytest.raises(ValueError, match="sizes differ"):
        measure(photo[:-4], photo, 4)


def test_the_training_progress_psnr_agrees_with_the_evaluation_psnr(photo: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    noisy = np.clip(photo + rng.normal(0, 8, photo.shape), 0, 255).astype(np.uint8)
    as_batch = [torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255 for x in (noisy, photo)]
    assert float(batch_psnr(*as_batch, 4)[0]) == pytest.approx(measure(noisy, photo, 4)[0], abs=1e-3)
