"""Image → model input, exactly as a model card's preprocessing says. Training, evaluation and the
oracle all go through these two functions, so a checkpoint sees the same pixels everywhere."""

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from oracle.ml.card import Preprocessing


def resize(image: Image.Image, spec: Preprocessing) -> NDArray[Any]:
    """RGB uint8 array of shape (H, W, 3) at the card's size."""
    height, width = spec.image_size
    rgb = image.convert("RGB")
    return np.asarray(rgb.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)


def normalise(batch: torch.Tensor, spec: Preprocessing) -> torch.Tensor:
    """(N, H, W, 3) uint8 → (N, 3, H, W) float: scaled to [0, 1], minus mean, over std."""
    x = batch.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
