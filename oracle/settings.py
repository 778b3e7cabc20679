"""Configuration: one pydantic-settings class, read from HISTOCHAIN_* environment variables."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The local node's upload token on a dev machine: not a secret, like anvil's test keys.
DEV_IPFS_TOKEN = "histochain-local-dev-token"  # noqa: S105 - a dev default, like anvil's keys


class Settings(BaseSettings):
    """Embedded defaults run everything locally: anvil on loopback, files under ./data."""

    model_config = SettingsConfigDict(env_prefix="HISTOCHAIN_", extra="forbid")

    data_dir: Path = Field(Path("data"), description="Where chain state, deployments and caches live.")
    chain_host: str = Field("127.0.0.1", description="Interface the dev chain listens on.")
    chain_port: int = Field(8555, ge=1, le=65535, description="Port of the dev chain (devnet).")
    chain_id: int = Field(313370, gt=0, description="Chain id of the dev chain (devnet).")

    ipfs_host: str = Field("127.0.0.1", description="Interface the local IPFS node listens on.")
    ipfs_port: int = Field(5180, ge=1, le=65535, description="Port of the local IPFS node.")
    ipfs_token: str = Field(
        DEV_IPFS_TOKEN,
        min_length=8,
        description="Bearer token of the local node's upload API (a dev default).",
    )
    ipfs_max_upload_bytes: int = Field(32 << 20, gt=0)
    gateways: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:5180"],
        min_length=1,
        description="IPFS gateways tried in turn (trustless: raw blocks and CARs are verified).",
    )
    pinata_jwt: str | None = Field(
        None, description="Pinata JWT (HISTOCHAIN_PINATA_JWT); never stored in the repo."
    )
    pinata_api_url: str = "https://api.pinata.cloud"

    @property
    def deployment_file(self) -> Path:
        return self.data_dir / "deployment.json"

    @property
    def ipfs_url(self) -> str:
        return f"http://{self.ipfs_host}:{self.ipfs_port}"

    @property
    def rpc_url(self) -> str:
        return f"http://{self.chain_host}:{self.chain_port}"
