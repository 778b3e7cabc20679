"""What the daemon suites share: a deployed registry on anvil, the local IPFS node, and the
patient's side of a registration, as the page does it: the image sealed in an envelope to the
oracle keys on chain and the patient's own, the envelope uploaded, its CID registered."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyrage import x25519
from web3 import AsyncWeb3
from web3.logs import DISCARD

from oracle.chain.anvil_accounts import dev_account
from oracle.chain.deployment import Deployment
from oracle.chain.registry import Registry, Status, hex32
from oracle.crypto.envelope import Binding, MediaType, seal, seal_image
from oracle.daemon.app import run_daemon
from oracle.dev.anvil import dev_patient_identity
from oracle.ipfs.pinata import PinataClient
from oracle.ml.card import ModelCard
from oracle.settings import Settings
from tests.stores import Stores, job_rows

PATIENT_ACCOUNTS = (2, 3, 4, 5)


@dataclass
class Chain:
    rpc: str
    deployment: Deployment
    oracle_key: x25519.Identity


@dataclass
class Stack:
    settings: Settings
    deployment: Deployment
    w3: AsyncWeb3[Any]
    registry: Registry
    pinata: PinataClient
    card: ModelCard


DEFAULT_MODEL = b"\x00" * 32  # registerImage's "the current default model"


async def envelope(
    stack: Stack, image: bytes, patient: int, media_type: MediaType | None = None, reply: bool = True
) -> bytes:
    """`image` sealed as the page seals it for anvil's test account `patient` (naming the patient's
    key for the oracle's explanation unless `reply` is False); `media_type` names the type for
    bytes that are no image (the page would not send them; an attacker would)."""
    deployment = stack.deployment
    patient_key = str(dev_patient_identity(patient, deployment.chain_id, deployment.address).to_public())
    recipients = [*await stack.registry.recipients(), patient_key]
    owner = dev_account(patient).address
    reply_to = patient_key if reply else None
    if media_type is None:
        return seal_image(image, owner, deployment.chain_id, deployment.address, recipients, reply_to)
    binding = Binding.of(owner, deployment.chain_id, deployment.address, media_type, len(image), reply_to)
    return seal(image, binding, recipients)


async def upload(stack: Stack, data: bytes) -> str:
    return (await stack.pinata.pin_file(data, "image.age", 1)).cid


async def register(stack: Stack, image: bytes, patient: int, model_id: bytes = DEFAULT_MODEL) -> str:
    """As the page does: seal, upload, then registerImage(cid, modelId) signed by the patient's wallet."""
    cid = await upload(stack, await envelope(stack, image, patient))
    return await send_registration(stack, cid, patient, model_id=model_id)


async def send_registration(
    stack: Stack, cid: str, patient: int, fee: int = 0, model_id: bytes = DEFAULT_MODEL
) -> str:
    account = dev_account(patient)
    call = stack.registry.contract.functions.registerImage(cid, model_id)
    tx = await call.build_transaction(
        {
            "from": account.address,
            "nonce": await stack.w3.eth.get_transaction_count(account.address, "pending"),
            "value": fee,
        }
    )
    tx_hash = await stack.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = await stack.w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    (event,) = stack.registry.contract.events.ImageRegistered().process_receipt(receipt, errors=DISCARD)
    return hex32(event["args"]["imageId"])


async def until_settled(stack: Stack, image_ids: list[str], timeout: float = 180) -> dict[str, Status]:
    """Polls the chain until no image is pending (the daemon's work is observable only there)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        statuses = await stack.registry.statuses(image_ids)
        if all(s != Status.PENDING for s in statuses.values()):
            return statuses
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still pending after {timeout}s: {Counter(statuses.values())}")
        await asyncio.sleep(0.2)


async def until_jobs_settled(oracles: list[Settings], image_ids: list[str], timeout: float = 60) -> None:
    """Polls the oracles' own records until each has finished every job (confirmed or superseded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        open_jobs = 0
        for settings in oracles:
            jobs = await job_rows(settings.database)
            open_jobs += sum(
                jobs[i]["state"] not in ("confirmed", "superseded") for i in image_ids if i in jobs
            )
            open_jobs += sum(i not in jobs for i in image_ids)
        if open_jobs == 0:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{open_jobs} jobs still open after {timeout}s")
        await asyncio.sleep(0.2)


async def rpc(stack: Stack, method: str, *params: Any) -> Any:
    return (await stack.w3.provider.make_request(method, list(params)))["result"]  # type: ignore[arg-type]


class DaemonProcess:
    """`histochain oracle run --role <role>` as a user runs it, configured through the environment
    (`env` adds to what `settings` says)."""

    def __init__(
        self, settings: Settings, log: Path, role: str = "all", env: dict[str, str] | None = None
    ) -> None:
        self.role = role
        self.env = {
            **os.environ,
            "HISTOCHAIN_CONFIG": str(log.parent / "no-config.toml"),
            "HISTOCHAIN_DATA_DIR": str(settings.data_dir),
            "HISTOCHAIN_RPC_URLS": json.dumps(settings.rpc_urls),
            "HISTOCHAIN_DEPLOYMENT": str(settings.deployment_path),
            "HISTOCHAIN_GATEWAYS": json.dumps(settings.gateways),
            "HISTOCHAIN_IPFS_HOST": settings.ipfs_host,
            "HISTOCHAIN_IPFS_PORT": str(settings.ipfs_port),
            "HISTOCHAIN_IPFS_TOKEN": settings.ipfs_token,
            "HISTOCHAIN_MODEL_DIR": str(settings.models_path),
            "HISTOCHAIN_TUNING__CONFIRMATIONS": "0",
            "HISTOCHAIN_TUNING__POLL_INTERVAL": "0.2",
            "HISTOCHAIN_TUNING__SUBMIT_WAIT": "0.3",
            "HISTOCHAIN_TUNING__UNREACHABLE_GRACE": str(settings.tuning.unreachable_grace),
            "HISTOCHAIN_TUNING__FETCH_TIMEOUT": str(settings.tuning.fetch_timeout),
            "HISTOCHAIN_TUNING__FETCH_DEADLINE": str(settings.tuning.fetch_deadline),
            "HISTOCHAIN_METRICS_PORT": str(settings.metrics_port),
            "HISTOCHAIN_DEVICE": "cpu",
            "HISTOCHAIN_ORACLE_AGE_KEY": settings.oracle_age_key.get_secret_value()
            if settings.oracle_age_key
            else "",
            **(env or {}),
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.since = 0  # the log's size when the current process started

    def start(self) -> None:
        cli = Path(sys.executable).with_name("histochain")
        self.since = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [cli, "oracle", "run", "--role", self.role], env=self.env, stdout=out, stderr=out
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def running(self, says: bytes = b'"msg": "oracle 0x') -> None:
        """Returns once this start has logged that it runs (or what `says` says)."""
        assert self.process is not None
        deadline = time.monotonic() + 60
        while says not in self.log.read_bytes()[self.since :]:
            assert self.process.poll() is None, "the daemon exited before it ran"
            assert time.monotonic() < deadline, f"the daemon did not log {says!r} within 60 s"
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM once this start has logged that it runs: a signal during the imports before
        the handler is installed would kill the process the default way."""
        assert self.process is not None
        self.running()
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@dataclass(frozen=True)
class Mode:
    """How the oracle runs in a test: `embedded` (one process, SQLite) or `distributed` (a
    coordinator and a worker on PostgreSQL and Redis)."""

    name: str
    stores: Stores | None = None

    def settings(self, base: Settings) -> Settings:
        return base if self.stores is None else self.stores.settings(base)

    async def run(self, settings: Settings, stop: asyncio.Event) -> None:
        if self.stores is None:
            await run_daemon(settings, stop)
        else:
            await asyncio.gather(*(run_daemon(settings, stop, role) for role in ("coordinator", "worker")))

    def processes(self, settings: Settings, folder: Path) -> list[DaemonProcess]:
        """The daemon processes an operator would start."""
        if self.stores is None:
            return [DaemonProcess(settings, folder / "daemon.log")]
        env = self.stores.environment()
        return [
            DaemonProcess(settings, folder / f"{role}.log", role, env) for role in ("coordinator", "worker")
        ]
