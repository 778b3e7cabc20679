"""The result document and its on-chain commitment (DESIGN: "The result document and its hash").

resultHash = keccak256(JCS(document)). The random salt keeps the two-label space from being
brute-forced from the public hash; anyone holding the document can recompute and compare.
Schema 2 (DESIGN v2): the image is an encrypted envelope, so `content_sha256` is the hash of the
decrypted image bytes; the task kind, a calibration note and the task's output CIDs are named."""

import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from oracle.jcs import commitment

SCHEMA_VERSION = 2
UNCALIBRATED = "not calibrated: the model's sigmoid output"


class ResultDocument(BaseModel):
    """A classification names its label, probabilities, threshold and calibration; an image-to-image
    task (super-resolution) names its output file under `outputs` and its `measures` instead.
    Fields a task does not use are left out of the canonical form, not written as null."""

    # JCS has no infinity or NaN: a measure that is not finite would fail the hash, after the work.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    schema_version: int = SCHEMA_VERSION
    image_id: str = Field(pattern=r"^0x[0-9a-f]{64}$")
    cid: str
    content_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    model_id: str = Field(pattern=r"^0x[0-9a-f]{64}$")
    model_name: str
    task: Literal["classification", "super-resolution"] = "classification"
    label: str | None = None
    probabilities: dict[str, float] | None = None
    threshold: float | None = None
    calibration: str | None = UNCALIBRATED
    measures: dict[str, int | float] | None = None
    oracle: str
    chain_id: int
    registry: str
    registration_block: int
    outputs: dict[str, str] = Field(default_factory=dict)
    salt: str = Field(pattern=r"^0x[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _task_fields(self) -> "ResultDocument":
        if self.task == "classification":
            if self.label is None or self.probabilities is None or self.threshold is None:
                raise ValueError("a classification names its label, probabilities and threshold")
        elif not {"image", "image_sha256"} <= self.outputs.keys() or self.measures is None:
            raise ValueError("an image-to-image result names its output image, its sha256 and its measures")
        return self

    def canonical_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def result_hash(self) -> bytes:
        return commitment(self.canonical_dict())


def new_salt() -> str:
    return "0x" + secrets.token_bytes(32).hex()


def verify(document: dict[str, Any], result_hash: bytes) -> bool:
    """Does this document (as served, any key order) commit to `result_hash`?"""
    return commitment(document) == result_hash
