"""Fitting the feature-space out-of-distribution check (after Lee et al., 2018, "A simple unified
framework for detecting out-of-distribution samples"): an image whose features lie far from every
class of the training images is something the model never learned to judge, even when its pixels
pass the input gate (oracle/gate.py): an H&E-tinted photograph, say. The features are the pooled
backbone output the head reads (the head's hidden layers keep little but the two classes, and
let such photographs through). Class means and one shared covariance come from the training
patients (Ledoit-Wolf shrinkage: a few hundred images for 64-2048 dimensions); the threshold is
the largest validation distance times MARGIN, so the check is fitted on no image it is judged on.
The largest of a few dozen validation images understates the tail of held-out tissue: MARGIN
keeps false refusals of it rare, and the card records them per split. (On the CI-sized run, held-out
tissue reaches 0.6 of the validation maximum and H&E-tinted photographs 2 to 3 times it.)"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from oracle.ml.card import FeatureCheck, Preprocessing
from oracle.ml.models import Classifier
from oracle.ml.preprocess import normalise

QUANTILE = 1.0  # of the validation distances: their maximum
MARGIN = 1.25
MIN_VALIDATION = 40  # images: fewer give no threshold worth the name
PREFIX = "feature_check."  # its tensors' names in the checkpoint's safetensors file

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureDistribution:
    """The training images' class means (classes x D) and the inverse of their shared covariance."""

    means: Floats
    precision: Floats

    def distance(self, features: npt.ArrayLike) -> Floats:
        """Distance of each row of `features` (N x D) to the nearest class mean."""
        f = np.asarray(features, dtype=np.float64)
        nearest = np.full(len(f), np.inf)
        for mean in self.means:
            d = f - mean
            nearest = np.minimum(nearest, np.einsum("nd,de,ne->n", d, self.precision, d))
        return np.asarray(np.sqrt(np.maximum(nearest, 0.0)))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            PREFIX + "means": torch.from_numpy(self.means.astype(np.float32)),
            PREFIX + "precision": torch.from_numpy(self.precision.astype(np.float32)),
        }

    @classmethod
    def from_tensors(cls, state: dict[str, torch.Tensor]) -> "FeatureDistribution | None":
        if PREFIX + "means" not in state:
            return None
        means, precision = (state[PREFIX + n].detach().cpu().double().numpy() for n in ("means", "precision"))
        return cls(means, precision)


@torch.inference_mode()
def embed(
    model: Classifier,
    images: torch.Tensor,
    preprocessing: Preprocessing,
    device: torch.device,
    batch_size: int = 64,
) -> Floats:
    """The pooled features of uint8 images (N, H, W, 3), in eval mode."""
    model.eval()
    out = [
        model.embed(normalise(images[i : i + batch_size].to(device), preprocessing)).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out).numpy().astype(np.float64)


def fit(
    train: tuple[Floats, npt.ArrayLike],
    validation: Floats,
    quantile: float = QUANTILE,
    margin: float = MARGIN,
) -> tuple[FeatureCheck, FeatureDistribution]:
    """Means and shared covariance from the (features, labels) of training; threshold from validation."""
    from sklearn.covariance import LedoitWolf  # fitting only: the predictor never imports sklearn

    features, labels = train[0], np.asarray(train[1])
    classes = sorted(set(labels.tolist()))
    means = np.stack([features[labels == c].mean(0) for c in classes])
    centred = features - means[np.searchsorted(classes, labels)]
    distribution = FeatureDistribution(means, LedoitWolf(assume_centered=True).fit(centred).precision_)
    # as the predictor will see it: the tensors are stored in float32
    distribution = FeatureDistribution.from_tensors(distribution.tensors()) or distribution
    threshold = margin * float(np.quantile(distribution.distance(validation), quantile))
    check = FeatureCheck(
        dimensions=features.shape[1],
        threshold=max(threshold, float(np.finfo(np.float32).tiny)),
        quantile=quantile,
        margin=margin,
    )
    return check, distribution


def fit_on_splits(
    model: Classifier,
    images: dict[str, torch.Tensor],
    labels: dict[str, torch.Tensor],
    preprocessing: Preprocessing,
    device: torch.device,
) -> tuple[FeatureCheck, FeatureDistribution] | None:
    """The check for a trained model, with the share of validation and test images it refuses;
    None when the validation split is too small to fit a threshold on."""
    if len(images["validation"]) < MIN_VALIDATION:
        return None
    features = {part: embed(model, images[part], preprocessing, device) for part in images}
    check, distribution = fit((features["train"], labels["train"].numpy()), features["validation"])
    refused = {
        part: float((distribution.distance(features[part]) > check.threshold).mean())
        for part in ("validation", "test")
    }
    return check.model_copy(update={"refused": refused}), distribution
