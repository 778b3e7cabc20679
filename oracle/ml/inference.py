"""Probabilities for images from a loaded checkpoint, single model or ensemble alike."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from oracle.ml.checkpoint import Loaded
from oracle.ml.gradcam import explain, overlay_png
from oracle.ml.preprocess import normalise, resize


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Assessment:
    """Calibrated P(positive) per image, and for each image a member's feature check refuses, why
    in words (None for the others)."""

    p: NDArray[np.float64]
    refused: list[str | None]


class Predictor:
    """P(positive label) per image, calibrated where the card says how; an ensemble averages its
    members' raw probabilities, and any member's feature check may refuse an image."""

    def __init__(self, loaded: Loaded, device: torch.device | str = "cpu") -> None:
        self.card = loaded.card
        self.members = loaded.members
        self.distributions = loaded.distributions
        self.device = torch.device(device)

    def resize(self, images: Sequence[Image.Image]) -> list[torch.Tensor]:
        """CPU work, one uint8 batch per member (members may differ in input size)."""
        return [
            torch.from_numpy(np.stack([resize(im, card.preprocessing) for im in images]))
            for card, _ in self.members
        ]

    @torch.inference_mode()
    def forward(self, batches: Sequence[torch.Tensor]) -> Assessment:
        probs: list[torch.Tensor] = []
        refused: list[str | None] = [None] * len(batches[0])
        for (card, model), distribution, batch in zip(self.members, self.distributions, batches, strict=True):
            hidden = model.embed(normalise(batch.to(self.device, non_blocking=True), card.preprocessing))
            probs.append(torch.sigmoid(model.logit(hidden).float()))
            if card.features is not None and distribution is not None:
                distances = distribution.distance(hidden.float().cpu().numpy())
                for i in np.flatnonzero(distances > card.features.threshold):
                    refused[i] = refused[i] or card.features.describe(float(distances[i]))
        mean = torch.stack(probs).mean(0).cpu().numpy().astype(np.float64)
        calibration = self.card.calibration
        return Assessment(mean if calibration is None else calibration.apply(mean), refused)

    def assess(self, images: Sequence[Image.Image]) -> Assessment:
        return self.forward(self.resize(images))

    def predict(self, images: Sequence[Image.Image]) -> NDArray[np.float64]:
        """P(positive) alone, for every image (metrics are taken on all of a split's images)."""
        return self.assess(images).p

    def explain(self, image: Image.Image, positive: bool) -> bytes:
        """The Grad-CAM map for `image` and its predicted label, as an 8-bit grey PNG at the image's
        size (oracle/ml/gradcam.py); an ensemble's is its members' mean."""
        return overlay_png(explain(self.members, image, positive, self.device))
