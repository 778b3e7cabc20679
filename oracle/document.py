"""The result document and its on-chain commitment (DESIGN: "The result document and its hash").

resultHash = keccak256(JCS(document)). The random salt keeps the two-label space from being
brute-forced from the public hash; anyone holding the document can recompute and compare.
Schema 2 (DESIGN v2): the image is an encrypted envelope, so `content_sha256` is the hash of the
decrypted image bytes; the task kind, a calibration note and the task's output CIDs are named."""

import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from oracle.jcs import commitment

SCHEMA_VERSION = 2
UNCALIBRATED = "not calibrated: the model's sigmoid output"


class ResultDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    image_id: str = Field(pattern=r"^0x[0-9a-f]{64}$")
    cid: str
    content_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    model_id: str = Field(pattern=r"^0x[0-9a-f]{64}$")
    model_name: str
    task: Literal["classification"] = "classification"
    label: str
    probabilities: dict[str, float]
    threshold: float
    calibration: str = UNCALIBRATED
    oracle: str
    chain_id: int
    registry: str
    registration_block: int
    outputs: dict[str, str] = Field(default_factory=dict)
    salt: str = Field(pattern=r"^0x[0-9a-f]{64}$")

    def canonical_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def result_hash(self) -> bytes:
        return commitment(self.canonical_dict())


def new_salt() -> str:
    return "0x" + secrets.token_bytes(32).hex()


def verify(document: dict[str, Any], result_hash: bytes) -> bool:
    """Does this document (as served, any key order) commit to `result_hash`?"""
    return commitment(document) == result_hash
