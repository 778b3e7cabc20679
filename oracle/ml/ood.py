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

import numpy as np
import numpy.typing as npt
import torch
from sklearn.covariance import LedoitWolf

from oracle.ml.card import FeatureCheck, Preprocessing
from oracle.ml.models import Classifier
from oracle.ml.preprocess import normalise

QUANTILE = 1.0  # of the validation distances: their maximum
MARGIN = 1.25
MIN_VALIDATION = 40  # images: fewer give no threshold worth the name


@torch.inference_mode()
def embed(
    model: Classifier,
    images: torch.Tensor,
    preprocessing: Preprocessing,
    device: torch.device,
    batch_size: int = 64,
) -> npt.NDArray[np.float64]:
    """The pooled features of uint8 images (N, H, W, 3), in eval mode."""
    model.eval()
    out = [
        model.embed(normalise(images[i : i + batch_size].to(device), preprocessing)).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out).numpy().astype(np.float64)


def fit(
    train: tuple[npt.NDArray[np.float64], npt.ArrayLike],
    validation: npt.NDArray[np.float64],
    quantile: float = QUANTILE,
    margin: float = MARGIN,
) -> FeatureCheck:
    """Means and shared covariance from the (features, labels) of training; threshold from validation."""
    features, labels = train[0], np.asarray(train[1])
    classes = sorted(set(labels.tolist()))
    means = np.stack([features[labels == c].mean(0) for c in classes])
    centred = features - means[np.searchsorted(classes, labels)]
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_
    unfitted = FeatureCheck(
        means=tuple(map(tuple, means.tolist())),
        precision=tuple(map(tuple, precision.tolist())),
        threshold=1.0,
        quantile=quantile,
        margin=margin,
    )
    threshold = margin * float(np.quantile(unfitted.distance(validation), quantile))
    return unfitted.model_copy(update={"threshold": max(threshold, np.finfo(np.float32).tiny)})


def fit_on_splits(
    model: Classifier,
    images: dict[str, torch.Tensor],
    labels: dict[str, torch.Tensor],
    preprocessing: Preprocessing,
    device: torch.device,
) -> FeatureCheck | None:
    """The check for a trained model, with the share of validation and test images it refuses;
    None when the validation split is too small to fit a threshold on."""
    if len(images["validation"]) < MIN_VALIDATION:
        return None
    features = {part: embed(model, images[part], preprocessing, device) for part in images}
    check = fit((features["train"], labels["train"].numpy()), features["validation"])
    refused = {
        part: float((check.distance(features[part]) > check.threshold).mean())
        for part in ("validation", "test")
    }
    return check.model_copy(update={"refused": refused})
