"""The deployment record: where the registry lives. Written by scripts/deploy.py, read by the
oracle and the page."""

import json
from pathlib import Path
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils.address import is_checksum_address
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from oracle.errors import HistochainError


class DeploymentError(HistochainError):
    """The deployment file is missing or invalid."""


class DeployedModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    model_id: str = Field(pattern=r"^0x[0-9a-f]{64}$")
    metadata_uri: str
    fee: int = Field(ge=0, lt=2**96, description="Wei a registration for this model pays, as deployed.")
    failure_fee: int = Field(ge=0, lt=2**96, description="Wei a failure keeps of it, as deployed.")


class Deployment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chain_id: int = Field(gt=0)
    address: ChecksumAddress
    block: int = Field(ge=0, description="Block of the deployment: where listeners start.")
    transaction: str = Field(pattern=r"^0x[0-9a-f]{64}$")
    deployer: ChecksumAddress
    oracles: tuple[ChecksumAddress, ...]
    request_timeout: int = Field(gt=0)
    models: tuple[DeployedModel, ...]
    default_model: str | None
    abi: list[dict[str, Any]]

    @field_validator("address", "deployer")
    @classmethod
    def _checksummed(cls, value: str) -> str:
        if not is_checksum_address(value):
            raise ValueError(f"not a checksummed address: {value}")
        return value

    @field_validator("oracles")
    @classmethod
    def _all_checksummed(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            cls._checksummed(value)
        return values

    @classmethod
    def load(cls, path: Path) -> "Deployment":
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except FileNotFoundError as exc:
            raise DeploymentError(f"{path}: no deployment file; deploy first (ape run deploy)") from exc
        except (OSError, json.JSONDecodeError, ValidationError) as exc:
            raise DeploymentError(f"{path}: not a valid deployment file: {exc}") from exc

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2) + "\n")
        tmp.replace(path)
