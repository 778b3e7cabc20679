"""The SR papers' measures: PSNR and SSIM on the luma (Y) of ITU-R BT.601 in [16, 235], after
shaving `scale` pixels off every border (Ledig et al. follow this; so do Set5/Set14 tables).
SSIM is Wang et al.'s: an 11x11 Gaussian window of sigma 1.5, K1 0.01, K2 0.03, data range 255,
averaged over the positions where the window fits (tests hold both to scikit-image's)."""

import math

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

# BT.601 luma from RGB in [0, 1] to [16, 235] (MATLAB's rgb2ycbcr, which the SR tables use).
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0
PEAK = 255.0
WINDOW, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03


def luma(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Y of 8-bit RGB (H, W, 3), as float in [16, 235]."""
    x = np.asarray(rgb, dtype=np.float64) / 255.0
    return np.asarray(Y_OFFSET + x @ np.asarray(Y_WEIGHTS))


def shave(image: npt.NDArray[np.float64], border: int) -> npt.NDArray[np.float64]:
    if border == 0:
        return image
    if min(image.shape[:2]) <= 2 * border:
        raise ValueError(
            f"an image of {image.shape[1]}x{image.shape[0]} has nothing left inside a {border}-px border"
        )
    return image[border:-border, border:-border]


def psnr(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(PEAK**2 / mse)


def _window() -> torch.Tensor:
    x = torch.arange(WINDOW, dtype=torch.float64) - WINDOW // 2
    g = torch.exp(-(x**2) / (2 * SIGMA**2))
    g /= g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    """Mean SSIM of two single-channel images (float, range `PEAK`)."""
    x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))[None, None]
    y = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float64))[None, None]
    w = _window()
    mx, my = F.conv2d(x, w), F.conv2d(y, w)
    vx = F.conv2d(x * x, w) - mx * mx
    vy = F.conv2d(y * y, w) - my * my
    cxy = F.conv2d(x * y, w) - mx * my
    c1, c2 = (K1 * PEAK) ** 2, (K2 * PEAK) ** 2
    index = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(index.mean())


def measure(
    output: npt.NDArray[np.uint8], reference: npt.NDArray[np.uint8], border: int
) -> tuple[float, float]:
    """(PSNR dB, SSIM) of two 8-bit RGB images of one size, on Y, inside the border."""
    if output.shape != reference.shape:
        raise ValueError(f"sizes differ: {output.shape} and {reference.shape}")
    y_out, y_ref = shave(luma(output), border), shave(luma(reference), border)
    return psnr(y_out, y_ref), ssim(y_out, y_ref)


def batch_psnr(output: torch.Tensor, target: torch.Tensor, border: int) -> torch.Tensor:
    """Per-image Y-PSNR of RGB batches in [0, 1] (for training's progress; 8-bit rounding first)."""
    weights = torch.tensor(Y_WEIGHTS, dtype=torch.float32, device=output.device).view(1, 3, 1, 1)

    def y(t: torch.Tensor) -> torch.Tensor:
        t = (t.float().clamp(0, 1) * 255).round() / 255
        return (Y_OFFSET + (t * weights).sum(1))[
            :, border : t.shape[2] - border, border : t.shape[3] - border
        ]

    mse = ((y(output) - y(target)) ** 2).mean((1, 2)).clamp_min(1e-10)
    return 10 * torch.log10(PEAK**2 / mse)
