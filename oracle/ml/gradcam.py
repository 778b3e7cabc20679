"""Grad-CAM (Selvaraju et al., 2017): where in the image the evidence for the predicted label lies.

The last convolutional map A (C x h x w) of `Classifier.features` is weighted per channel by the
mean gradient of the predicted label's logit (the logit for the positive label, its negative for
the other) and summed; the ReLU keeps what speaks for the label. The map is upsampled to the
image and scaled to [0, 1]. It shows where the model looked, not why it is right: the page says so."""

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from PIL import Image

from oracle.ml.card import ModelCard
from oracle.ml.models import Classifier
from oracle.ml.preprocess import normalise, resize

MAX_SIDE = 1024  # pixels on the map's longer side, at most


def heat(model: Classifier, x: torch.Tensor, positive: Sequence[bool]) -> torch.Tensor:
    """Maps (N, H, W) in [0, 1] for a normalised batch `x`, each for its image's predicted label."""
    model.eval()
    with torch.enable_grad():
        activations = model.features(model.augment(x)).detach().requires_grad_(True)
        logits = model.logit(model.pool(activations).flatten(1))
        sign = torch.tensor([1.0 if p else -1.0 for p in positive], device=logits.device)
        (gradients,) = torch.autograd.grad((logits * sign).sum(), activations)
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activations).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False).squeeze(1)
    top = cam.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)
    return (cam / top).detach()


def explain(
    members: Sequence[tuple[ModelCard, Classifier]],
    image: Image.Image,
    positive: bool,
    device: torch.device | str = "cpu",
) -> npt.NDArray[np.float32]:
    """The map for one image at its own size, or scaled to at most MAX_SIDE on its longer side
    (H x W, [0, 1]: the map holds no finer detail than the model's input, and a 50-megapixel
    image must not cost a float per pixel); an ensemble's is its members' mean."""
    scale = min(1.0, MAX_SIDE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    maps = []
    for card, model in members:
        batch = torch.from_numpy(np.stack([resize(image, card.preprocessing)])).to(device)
        cam = heat(model, normalise(batch, card.preprocessing), [positive])[0].cpu().numpy()
        maps.append(np.asarray(Image.fromarray(cam).resize(size, Image.Resampling.BILINEAR)))
    mean = np.mean(maps, axis=0)
    return np.asarray(mean / max(float(mean.max()), 1e-12), dtype=np.float32)


def mass_inside(cam: npt.NDArray[np.floating[Any]], mask: npt.NDArray[np.bool_]) -> float:
    """Share of the map's mass inside `mask` (the energy-based pointing game of Score-CAM,
    Wang et al., 2020); chance is the mask's share of the image."""
    total = float(cam.sum())
    return float(cam[mask].sum()) / total if total > 0 else 0.0


def overlay_png(cam: npt.NDArray[np.floating[Any]]) -> bytes:
    """The map as an 8-bit greyscale PNG (the page colours it over the owner's image)."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(cam, 0, 1) * 255).astype(np.uint8), "L").save(buffer, format="PNG")
    return buffer.getvalue()
