"""Configuration: one pydantic-settings class. Sources, strongest first: HISTOCHAIN_* environment
variables, then the TOML file named by HISTOCHAIN_CONFIG (default ./histochain.toml, if present),
then the embedded defaults (everything local: anvil devnet, the local IPFS node, SQLite, CPU)."""

import os
from pathlib import Path
from typing import Literal

from eth_utils.address import is_address, to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# The local node's upload token on a dev machine: not a secret, like anvil's test keys.
DEV_IPFS_TOKEN = "histochain-local-dev-token"  # noqa: S105 - a dev default, like anvil's keys


class GateLimits(BaseModel):
    """Where each check of the input gate (oracle/gate.py) draws its line; `[gate]` in the TOML
    file, HISTOCHAIN_GATE__<NAME> in the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_side: int = Field(64, ge=1, description="Pixels on the shorter side, at least.")
    max_flat: float = Field(0.5, ge=0, le=1, description="Share the 16 commonest colours may cover.")
    min_saturation: int = Field(20, ge=0, le=255, description="A pixel this saturated (0-255) is stained.")
    min_tissue: float = Field(0.25, ge=0, le=1, description="Share of stained pixels, at least.")
    min_he_hue: float = Field(0.8, ge=0, le=1, description="Share of the tissue with an H&E hue, at least.")
    min_each_stain: float = Field(0.01, ge=0, le=1, description="Share of the tissue in each stain.")
    min_focus: float = Field(8.0, ge=0, description="Variance of the grey image's Laplacian, at least.")


class Tuning(BaseModel):
    """How the daemon paces its work; `[tuning]` in the TOML file, HISTOCHAIN_TUNING__<NAME> in the
    environment."""

    model_config = ConfigDict(extra="forbid")

    accept_plaintext: bool = Field(
        False,
        description="Also classify unencrypted images (public research sets only: no owner binding).",
    )
    confirmations: int = Field(1, ge=0, description="Blocks a registration must be buried under first.")
    log_chunk_blocks: int = Field(2000, ge=1, description="eth_getLogs range per request when catching up.")
    poll_interval: float = Field(1.0, gt=0, description="Seconds between polls for new blocks.")
    reorg_depth: int = Field(
        64, ge=1, description="How far back to rescan when the checkpoint is reorged away."
    )
    fetch_concurrency: int = Field(8, ge=1)
    classify_batch: int = Field(16, ge=1, description="Micro-batch: most images per forward pass.")
    classify_wait: float = Field(0.05, ge=0, description="Micro-batch: seconds to wait for more images.")
    submit_batch: int = Field(32, ge=1, description="Most results per postResults transaction.")
    submit_wait: float = Field(0.5, ge=0, description="Seconds to wait for more ready results.")
    max_image_pixels: int = Field(50_000_000, gt=0)
    fetch_timeout: float = Field(30.0, gt=0, description="Seconds for one gateway to answer one request.")
    fetch_deadline: float = Field(60.0, gt=0, description="Seconds for one attempt over every gateway.")
    fast_fetch_deadline: float = Field(
        10.0,
        gt=0,
        description="Seconds for an attempt in the fast lane (at most fetch_deadline); a CID that needs "
        "longer moves to the slow lane, where fetch_deadline applies.",
    )
    unreachable_grace: float = Field(
        600.0, gt=0, description="Seconds an image may be missing from every gateway before it fails."
    )
    retry_cap: float = Field(120.0, gt=0, description="Longest wait between two tries of one job.")
    max_attempts: int = Field(5, ge=1, description="Tries of a job our own faults may cost before it fails.")
    slow_lane_workers: int = Field(
        2, ge=1, description="Fetch workers for CIDs that were slow once, apart from the others."
    )
    owner_share: int = Field(2, ge=1, description="Most fetches one owner's images may hold at once.")
    retry_delay: float = Field(2.0, gt=0, description="First wait before a job is tried again (doubles).")
    max_strikes: int = Field(2, ge=1, description="Sandbox kills over one image before its verdict.")
    decoded_budget: int = Field(
        512 << 20, gt=0, description="Bytes of decoded images waiting for the classifier at once."
    )
    dispatch_batch: int = Field(
        16, ge=1, description="Distributed: most imageIds per work message a coordinator sends."
    )
    dispatch_lease: float = Field(
        300.0,
        gt=0,
        description="Distributed: seconds a dispatched job may stay queued before it is dispatched again.",
    )
    redelivery_idle: float = Field(
        180.0,
        gt=0,
        description="Distributed: seconds a work message may go unacked before another worker takes it.",
    )
    ready_poll: float = Field(
        0.2, gt=0, description="Distributed: seconds between a coordinator's looks for results to send."
    )
    drain_timeout: float = Field(
        30.0, gt=0, description="Distributed: seconds a stopping worker takes to finish the work it holds."
    )
    worker_messages: int = Field(2, ge=1, description="Distributed: work messages one worker holds at once.")
    stream_maxlen: int = Field(
        100_000, ge=1_000, description="Distributed: work messages the stream keeps (older ones are trimmed)."
    )


class Settings(BaseSettings):
    """Embedded defaults run everything locally: anvil on loopback, files under ./data."""

    model_config = SettingsConfigDict(env_prefix="HISTOCHAIN_", env_nested_delimiter="__", extra="forbid")

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

    rpc_urls: list[str] = Field(
        default_factory=list, description="Oracle RPC endpoints (default: the dev chain)."
    )
    ws_url: str | None = Field(
        None,
        description="WebSocket endpoint for new heads (default: the first RPC URL as ws://, as on anvil).",
    )
    follow: Literal["websocket", "poll"] = Field("websocket", description="How to learn of new blocks.")
    deployment: Path | None = Field(
        None, description="Deployment file (default: <data dir>/deployment.json)."
    )
    oracle_private_key: SecretStr | None = Field(
        None, description="Signer key (HISTOCHAIN_ORACLE_PRIVATE_KEY); never in a file in the repo."
    )
    oracle_keystore: Path | None = Field(None, description="Encrypted JSON keystore of the signer.")
    oracle_keystore_password: SecretStr | None = None
    oracle_age_key: SecretStr | None = Field(
        None, description="The oracle's age identity, AGE-SECRET-KEY-1… (HISTOCHAIN_ORACLE_AGE_KEY)."
    )
    oracle_age_key_file: Path | None = Field(
        None, description="File with the oracle's age identity (default: <data dir>/oracle-age.key)."
    )
    max_image_bytes: int = Field(32 << 20, gt=0)
    tuning: Tuning = Field(default_factory=Tuning, description="How the daemon paces its work.")
    sandbox_workers: int = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)),
        ge=1,
        description="Processes that verify, decrypt and decode untrusted bytes (default: the cores).",
    )
    gate: GateLimits = Field(
        default_factory=GateLimits, description="The input gate's limits: what counts as H&E tissue."
    )
    sandbox_time_limit: float = Field(
        30.0, gt=0, description="CPU seconds a sandboxed task may use (it may take 4 times as long)."
    )
    sandbox_memory_limit: int = Field(2 << 30, gt=0, description="Bytes a sandbox worker may add.")
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:N.")
    inference_threads: int = Field(
        default_factory=lambda: max(1, len(os.sched_getaffinity(0)) // 2),
        ge=1,
        description="torch threads for CPU inference (default: half the cores, the rest fetch and decode).",
    )
    model_dir: Path | None = Field(None, description="Checkpoints (default: <data dir>/models).")
    database_url: str | None = Field(
        None,
        description="Default: SQLite file <data dir>/oracle.db; postgresql+asyncpg://… when distributed.",
    )
    redis_url: str | None = Field(
        None, description="Distributed mode: Redis holding the work stream (redis://host:port/db)."
    )
    oracle_address: str | None = Field(
        None,
        description="The oracle's address, for workers that hold no signing key (default: the signer's).",
    )
    api_host: str = Field("127.0.0.1", description="Interface of the query API.")
    api_port: int = Field(8788, ge=1, le=65535, description="Port of the query API.")
    api_domain: str = Field("localhost:8000", description="SIWE domain: the host the page is served from.")
    api_uri: str = Field("http://localhost:8000", description="SIWE URI: the page's origin.")
    api_cors_origins: list[str] = Field(default_factory=lambda: ["*"], description="Origins the API answers.")
    page_host: str = Field("127.0.0.1", description="Interface the page's static server listens on.")
    page_port: int = Field(8000, ge=1, le=65535, description="Port of the page (SIWE domain: api_domain).")
    page_chain_name: str = Field("histochain devnet", description="Network name wallets are asked to add.")
    page_explorer: str | None = Field(None, description="Block explorer for transaction links on the page.")
    dev_train_patients: int = Field(80, ge=2, description="dev up's quick model: synthetic patients.")
    dev_train_images_per_patient: int = Field(4, ge=1, description="dev up's quick model: images each.")
    dev_train_epochs: int = Field(30, ge=1, description="dev up's quick model: training epochs.")
    dev_train_image_size: int = Field(64, ge=16, description="dev up's quick model: input side.")
    dev_sr_steps: int = Field(120, ge=1, description="dev up's demo super-resolution model: training steps.")
    metrics_host: str = Field("127.0.0.1", description="Interface of the daemon's /metrics and /health.")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Port of /metrics (0: any free port).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = Path(os.environ.get("HISTOCHAIN_CONFIG", "histochain.toml"))
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config)

    @field_validator("oracle_address")
    @classmethod
    def _checksummed(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not is_address(value):
            raise ValueError(f"not an Ethereum address: {value[:50]!r}")
        return to_checksum_address(value)

    def tuned(self, **changes: object) -> "Settings":
        """A copy with some of the daemon's tuning changed (validated like the rest)."""
        return self.model_copy(update={"tuning": Tuning.model_validate(self.tuning.model_dump() | changes)})

    @property
    def deployment_path(self) -> Path:
        return self.deployment or self.data_dir / "deployment.json"

    @property
    def oracle_key_path(self) -> Path:
        return self.oracle_age_key_file or self.data_dir / "oracle-age.key"

    @property
    def models_path(self) -> Path:
        return self.model_dir or self.data_dir / "models"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'oracle.db'}"

    @property
    def rpc_endpoints(self) -> list[str]:
        return self.rpc_urls or [self.rpc_url]

    @property
    def websocket_url(self) -> str | None:
        if self.follow == "poll":
            return None
        if self.ws_url:
            return self.ws_url
        http = self.rpc_endpoints[0]
        return "ws" + http[4:] if http.startswith("http") else None

    @property
    def ipfs_url(self) -> str:
        return f"http://{self.ipfs_host}:{self.ipfs_port}"

    @property
    def rpc_url(self) -> str:
        return f"http://{self.chain_host}:{self.chain_port}"
