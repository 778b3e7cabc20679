"""Tiled 4x inference: memory bounded by the tile whatever the image, time linear in its pixels,
and the output the same as an untiled pass (each tile carries its receptive field as margin)."""

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from oracle.ml.names import SR_SCALE as SCALE
from oracle.ml.sr.card import SrCard
from oracle.ml.sr.data import downscale
from oracle.ml.sr.metrics import luma, psnr
from oracle.ml.sr.models import SRResNet

Pixels = npt.NDArray[np.uint8]
CONSISTENCY_CEILING_DB = 100.0  # one grey level off in one pixel of 100,000 measures ~99.5 dB


@torch.inference_mode()
def upscale(model: SRResNet, lr: Pixels, device: torch.device, tile: int, margin: int) -> Pixels:
    """8-bit RGB (H, W, 3) to (4H, 4W, 3), one tile of `tile`² LR pixels (+ margins) at a time."""
    h, w = lr.shape[:2]
    out = np.empty((h * SCALE, w * SCALE, 3), dtype=np.uint8)
    x = torch.from_numpy(np.require(lr, requirements=["C", "W"])).permute(2, 0, 1)[None]
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ya, xa = max(y0 - margin, 0), max(x0 - margin, 0)
            yb, xb = min(y1 + margin, h), min(x1 + margin, w)
            patch = x[..., ya:yb, xa:xb].to(device, torch.float32) / 255.0
            sr = model(patch)[
                0, :, (y0 - ya) * SCALE : (y1 - ya) * SCALE, (x0 - xa) * SCALE : (x1 - xa) * SCALE
            ]
            out[y0 * SCALE : y1 * SCALE, x0 * SCALE : x1 * SCALE] = (
                (sr.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            )
    return out


def consistency(lr: Pixels, sr: Pixels) -> float:
    """Y-PSNR (dB) of the output downscaled back by bicubic against the input: how faithfully the
    added detail keeps to what was observed (a no-reference check; no HR image exists here). A
    flat input comes back exactly (infinite PSNR): the measure stops at CONSISTENCY_CEILING_DB,
    which result documents can hold (JCS has no infinity)."""
    return min(psnr(luma(downscale(sr, SCALE)), luma(lr)), CONSISTENCY_CEILING_DB)


class Upscaler:
    """A loaded SR checkpoint, as the oracle runs it."""

    def __init__(self, card: SrCard, model: SRResNet, device: torch.device | str = "cpu") -> None:
        self.card, self.model, self.device = card, model.eval(), torch.device(device)

    def upscale(self, image: Image.Image) -> Image.Image:
        lr = np.asarray(image.convert("RGB"))
        spec = self.card.input
        return Image.fromarray(upscale(self.model, lr, self.device, spec.tile, spec.margin), "RGB")
