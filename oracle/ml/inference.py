"""Probabilities for images from a loaded checkpoint, single model or ensemble alike."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from oracle.ml.checkpoint import Loaded
from oracle.ml.preprocess import normalise, resize


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Predictor:
    """P(positive label) per image, calibrated where the card says how; an ensemble averages its
    members' raw probabilities."""

    def __init__(self, loaded: Loaded, device: torch.device | str = "cpu") -> None:
        self.card = loaded.card
        self.members = loaded.members
        self.device = torch.device(device)

    def resize(self, images: Sequence[Image.Image]) -> list[torch.Tensor]:
        """CPU work, one uint8 batch per member (members may differ in input size)."""
        return [
            torch.from_numpy(np.stack([resize(im, card.preprocessing) for im in images]))
            for card, _ in self.members
        ]

    @torch.inference_mode()
    def forward(self, batches: Sequence[torch.Tensor]) -> NDArray[Any]:
        probs = []
        for (card, model), batch in zip(self.members, batches, strict=True):
            x = normalise(batch.to(self.device, non_blocking=True), card.preprocessing)
            probs.append(torch.sigmoid(model(x).float()))
        mean = torch.stack(probs).mean(0).cpu().numpy()
        calibration = self.card.calibration
        return mean if calibration is None else calibration.apply(mean)

    def predict(self, images: Sequence[Image.Image]) -> NDArray[Any]:
        return self.forward(self.resize(images))
