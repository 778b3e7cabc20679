"""Configuration: one pydantic-settings class, read from HISTOCHAIN_* environment variables."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Embedded defaults run everything locally: anvil on loopback, files under ./data."""

    model_config = SettingsConfigDict(env_prefix="HISTOCHAIN_", extra="forbid")

    data_dir: Path = Field(Path("data"), description="Where chain state, deployments and caches live.")
    chain_host: str = Field("127.0.0.1", description="Interface the dev chain listens on.")
    chain_port: int = Field(8555, ge=1, le=65535, description="Port of the dev chain (devnet).")
    chain_id: int = Field(313370, gt=0, description="Chain id of the dev chain (devnet).")

    @property
    def deployment_file(self) -> Path:
        return self.data_dir / "deployment.json"

    @property
    def rpc_url(self) -> str:
        return f"http://{self.chain_host}:{self.chain_port}"
