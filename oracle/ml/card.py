"""Model cards: what a checkpoint is, and the on-chain modelId that commits to it."""

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oracle.errors import HistochainError
from oracle.jcs import commitment
from oracle.ml.names import CLASSIFICATION_TASK
from oracle.ml.statement import INTENDED_USE, OUT_OF_SCOPE

CARD_FILE = "model-card.json"  # next to model.safetensors in a checkpoint folder

SHA256_HEX = r"^[0-9a-f]{64}$"
BINS = 15  # calibration error bins (oracle/ml/calibration.py)
EPS = 1e-7  # probabilities are clipped to [EPS, 1 - EPS] before a logit or a log

Floats = npt.NDArray[np.float64]


def logit(p: npt.ArrayLike) -> Floats:
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.asarray(np.log(q) - np.log1p(-q))


def scale(p: npt.ArrayLike, temperature: float) -> Floats:
    """P(positive) with the logit divided by `temperature`."""
    return np.asarray(1.0 / (1.0 + np.exp(-logit(p) / temperature)))


class ModelCardError(HistochainError):
    """A model card is missing, unreadable or invalid."""


class Preprocessing(BaseModel):
    """How an RGB image becomes the model's input tensor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: tuple[int, int] = Field(description="(height, width) after resizing.")
    resize: Literal["pil-bilinear"] = Field(
        "pil-bilinear", description="How: Pillow's bilinear resize of RGB."
    )
    mean: tuple[float, float, float] = Field(
        description="Per-channel mean subtracted after scaling to [0, 1]."
    )
    std: tuple[float, float, float] = Field(
        description="Per-channel std divided by after subtracting the mean."
    )


class Scores(BaseModel):
    """Calibration measures on one split: expected calibration error, Brier score, NLL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ece: float
    brier: float
    nll: float


class Calibration(BaseModel):
    """How a checkpoint's raw probabilities are calibrated, and how well, before and after."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str = "temperature scaling"
    temperature: float = Field(gt=0)
    fitted_on: str = "validation patients"
    identified: bool = Field(True, description="False: the fit had no finite optimum; T is 1.")
    bins: int = BINS
    before: dict[str, Scores] = Field(description="Per split (validation, test): raw probabilities.")
    after: dict[str, Scores] = Field(description="Per split: after temperature scaling.")

    def apply(self, p: npt.ArrayLike) -> Floats:
        """Calibrated P(positive) for raw `p` (unchanged where no temperature was identified)."""
        return scale(p, self.temperature) if self.identified else np.asarray(p, dtype=np.float64)

    def describe(self) -> str:
        if not self.identified:
            return (
                f"not calibrated: no temperature is identifiable from the {self.fitted_on} "
                "(the model is right on every one of their images, or wrong on every one), so T = 1"
            )
        return f"{self.method}, T = {self.temperature:.4f}, fitted on the {self.fitted_on}"


class FeatureCheck(BaseModel):
    """The feature-space out-of-distribution check of oracle/ml/ood.py: the Mahalanobis distance of
    an image's pooled features to the nearest class mean of the training images (one shared
    covariance), refused above `threshold`, fitted on the validation images' distances. The means
    and the precision matrix are tensors in the checkpoint's safetensors file (covered by its
    sha256): a 2048-dimensional backbone's would make a 100 MB card."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str = "Mahalanobis distance to the nearest class mean, shared Ledoit-Wolf covariance"
    layer: str = "the pooled features the head reads (the backbone's last, global-average-pooled)"
    dimensions: int = Field(gt=0, description="Features per image.")
    threshold: float = Field(gt=0, description="Distances above it are refused.")
    quantile: float = Field(gt=0, le=1, description="Of the validation distances, the one scaled.")
    margin: float = Field(1.0, ge=1, description="The threshold is that distance times this.")
    refused: dict[str, float] = Field(default_factory=dict, description="Share refused, per split.")

    def describe(self, distance: float) -> str:
        return (
            f"its features lie far from every training image's (Mahalanobis distance {distance:.1f}, "
            f"refused above {self.threshold:.1f}, fitted on the validation images): "
            "not like the tissue this model was trained on"
        )


class ModelCard(BaseModel):
    """A checkpoint's description, stored next to its safetensors file as JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    task: Literal["classification"] = CLASSIFICATION_TASK
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    architecture: str = Field(min_length=1, description="Builder name in the model registry.")
    labels: tuple[str, ...] = Field(min_length=2)
    threshold: float = Field(gt=0, lt=1, description="P(positive label) at or above which it is predicted.")
    preprocessing: Preprocessing
    weights_file: str = Field(min_length=1, description="safetensors file, relative to the card.")
    weights_sha256: str = Field(pattern=SHA256_HEX)
    member_cards: tuple["ModelCard", ...] = Field((), description="An ensemble's members, in order.")
    calibration: Calibration | None = Field(
        None, description="Temperature scaling of P(positive); `threshold` applies to the calibrated P."
    )
    features: FeatureCheck | None = Field(None, description="The feature-space check, fitted in training.")
    intended_use: str = INTENDED_USE
    out_of_scope: tuple[str, ...] = OUT_OF_SCOPE
    metrics: dict[str, float] = Field(default_factory=dict, description="Test-split metrics.")
    evaluation: dict[str, Any] = Field(
        default_factory=dict, description="Test split, image and patient level, with bootstrap 95 % CIs."
    )
    gate: dict[str, Any] = Field(
        default_factory=dict, description="The input gate's limits, training statistics, refusals."
    )
    data: dict[str, Any] = Field(default_factory=dict, description="Data set and split description.")
    training: dict[str, Any] = Field(default_factory=dict, description="How it was trained.")

    def identity(self) -> dict[str, Any]:
        """What the modelId commits to: whatever changes the model's answers. The weights enter
        through their sha256, an ensemble's members through their own model ids."""
        identity = self.model_dump(
            mode="json",
            include={
                "schema_version",
                "task",
                "architecture",
                "labels",
                "threshold",
                "preprocessing",
                "weights_sha256",
            },
        )
        identity["members"] = ["0x" + member.model_id.hex() for member in self.member_cards]
        if self.calibration is not None and self.calibration.identified:  # it changes the answers
            identity["temperature"] = self.calibration.temperature
        if self.features is not None:  # what it refuses
            identity["features"] = self.features.model_dump(mode="json", exclude={"refused"})
        return identity

    @property
    def model_id(self) -> bytes:
        return commitment(self.identity())

    @classmethod
    def load(cls, path: Path) -> "ModelCard":
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, ValidationError) as exc:
            raise ModelCardError(f"{path}: not a valid model card: {exc}") from exc

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2) + "\n")
