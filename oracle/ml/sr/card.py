"""A super-resolution checkpoint's card: the task, the scale, the input limits that bound the
oracle's work per image, and the evaluation figures; its modelId commits to what changes the
output image (weights, scale, limits)."""

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oracle.imaging import MAX_SIDE
from oracle.jcs import commitment
from oracle.ml.card import SHA256_HEX, ModelCardError
from oracle.ml.names import SR_SCALE as SCALE
from oracle.ml.names import SUPER_RESOLUTION_TASK

INTENDED_USE = (
    "Research and demonstration: a 4x larger view of one low-resolution image (a low-magnification "
    "scan, a photograph), for a person who knows that the detail added is the model's estimate, "
    "not a measurement. Not for diagnosis."
)
OUT_OF_SCOPE = (
    "diagnosing from the upscaled image, or measuring structures in it: the added detail is "
    "predicted, not observed (SRGAN's especially: it is trained to look real, not to be exact)",
    "scales other than 4x, and inputs past the card's pixel limits (refused as too large)",
)


# At most 512 x 512 in, 2048 x 2048 out: the output PNG (12 MiB raw at worst) stays under the
# IPFS node's default upload cap (ipfs_max_upload_bytes, 32 MiB), so it can always be pinned.
MAX_INPUT_PIXELS = 512 * 512


class SrInput(BaseModel):
    """What the model takes, and how the oracle runs it. Inference is tiled: tiles of `tile` LR
    pixels with `margin` pixels of context on each side (at least the network's receptive
    radius, so tiling leaves the output unchanged) bound memory whatever the image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scale: Literal[4] = SCALE
    colour: Literal["RGB, 8 bits per channel, in [0, 1]"] = "RGB, 8 bits per channel, in [0, 1]"
    max_pixels: int = Field(
        256 * 256,
        gt=0,
        le=MAX_INPUT_PIXELS,
        description="Largest LR input the oracle accepts (its cost is linear in it).",
    )
    max_side: int = Field(
        1024,
        gt=0,
        le=MAX_SIDE,  # past it, decoding would reduce the image instead of refusing it
        description="Longest LR side the oracle accepts.",
    )
    tile: int = Field(160, ge=16)
    margin: int = Field(40, ge=0)


class SrCard(BaseModel):
    """A super-resolution checkpoint's description, stored next to its safetensors file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    task: Literal["super-resolution"] = SUPER_RESOLUTION_TASK
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    architecture: Literal["srresnet", "srgan"] = Field(
        description="srresnet (trained on MSE) or srgan (its generator, fine-tuned adversarially)."
    )
    input: SrInput = SrInput()
    weights_file: str = Field(min_length=1)
    weights_sha256: str = Field(pattern=SHA256_HEX)
    intended_use: str = INTENDED_USE
    out_of_scope: tuple[str, ...] = OUT_OF_SCOPE
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Mean Y-PSNR (dB) and SSIM on the held-out set, and bicubic's."
    )
    evaluation: dict[str, Any] = Field(default_factory=dict, description="Per image, and the protocol.")
    data: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        return self.model_dump(
            mode="json", include={"schema_version", "task", "architecture", "input", "weights_sha256"}
        )

    @property
    def model_id(self) -> bytes:
        return commitment(self.identity())

    @classmethod
    def load(cls, path: Path) -> "SrCard":
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, ValidationError) as exc:
            raise ModelCardError(f"{path}: not a valid super-resolution card: {exc}") from exc

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2) + "\n")
