"""`histochain dev demo`: a patient's path, end to end, against the running dev stack.

As the page does it, for anvil's test account 2: the patient's key is derived from the account's
signature of the key message, each synthetic image is sealed in an envelope to the oracle keys on
chain and the patient's own, the envelope is uploaded to the local IPFS node and its CID
registered (real uploads, real signed transactions). The demo waits for the oracle, signs in to
the query API with Sign-In with Ethereum, reads each result document and checks its keccak256(JCS)
against the result hash on chain. Latency is wall-clock time from the registration's receipt to
the chain showing the outcome."""

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
from eth_account.messages import encode_defunct
from web3 import AsyncHTTPProvider, AsyncWeb3

from oracle.chain.anvil_accounts import dev_account
from oracle.chain.deployment import Deployment
from oracle.chain.reasons import FailureReason
from oracle.chain.registry import Registry, Status, image_id_for
from oracle.crypto.envelope import seal_image
from oracle.dev.anvil import dev_patient_identity
from oracle.dev.stack import stack_settings
from oracle.errors import HistochainError
from oracle.ipfs.pinata import PinataClient
from oracle.jcs import commitment
from oracle.ml.data.synth import synth_png
from oracle.settings import Settings

PATIENT = 2
POLL = 0.25


class DemoError(HistochainError):
    """The demo could not run against the stack (not up, or a step refused)."""


@dataclass
class DemoRow:
    truth: str
    cid: str
    image_id: str
    status: str = "pending"
    label: str | None = None
    probability: float | None = None
    verified: bool | None = None
    heat_map: str | None = None  # the sealed Grad-CAM map's CID, for the patient's key
    latency: float | None = None
    reason: str | None = None


async def _register(w3: AsyncWeb3[Any], registry: Registry, cids: list[str]) -> list[Any]:
    """All registrations signed with consecutive nonces, then their receipts."""
    patient = dev_account(PATIENT)
    nonce = await w3.eth.get_transaction_count(patient.address, "pending")
    hashes = []
    for offset, cid in enumerate(cids):
        call: Any = registry.contract.functions.registerImage(cid, b"\x00" * 32)
        tx = await call.build_transaction({"from": patient.address, "nonce": nonce + offset})
        hashes.append(await w3.eth.send_raw_transaction(patient.sign_transaction(tx).raw_transaction))
    return [await w3.eth.wait_for_transaction_receipt(h, timeout=60) for h in hashes]


async def _sign_in(http: aiohttp.ClientSession, api: str) -> str:
    patient = dev_account(PATIENT)
    async with http.post(f"{api}/v1/auth/nonce", json={"address": patient.address}) as response:
        if response.status != 200:
            raise DemoError(
                f"the API refused a sign-in nonce: HTTP {response.status} {await response.text()}"
            )
        message = (await response.json())["message"]
    signature = "0x" + bytes(patient.sign_message(encode_defunct(text=message)).signature).hex()
    async with http.post(
        f"{api}/v1/auth/verify", json={"message": message, "signature": signature}
    ) as response:
        if response.status != 200:
            raise DemoError(f"the API refused the sign-in: HTTP {response.status} {await response.text()}")
        token: str = (await response.json())["token"]
        return token


async def _document(http: aiohttp.ClientSession, api: str, token: str, image_id: str, timeout: float) -> Any:
    """The result document; the API learns of the confirmation a moment after the chain shows it."""
    deadline = time.monotonic() + timeout
    while True:
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{api}/v1/images/{image_id}/document", headers=headers) as response:
            if response.status == 200:
                return (await response.json())["document"]
            if response.status != 404 or time.monotonic() > deadline:
                raise DemoError(f"no document for {image_id}: HTTP {response.status} {await response.text()}")
        await asyncio.sleep(POLL)


async def run_demo(settings: Settings, images: int, timeout: float, progress: Any = None) -> list[DemoRow]:
    settings = stack_settings(settings)
    try:
        deployment = Deployment.load(settings.deployment_path)
    except HistochainError as exc:
        raise DemoError(f"{exc}; is the stack up? (histochain dev up)") from exc
    w3 = AsyncWeb3(AsyncHTTPProvider(settings.rpc_url))
    registry = Registry(w3, deployment)
    api = f"http://{settings.api_host}:{settings.api_port}"
    rng = np.random.default_rng(secrets.randbits(64))
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            pinata = PinataClient(http, settings.ipfs_token, settings.ipfs_url)
            patient_key = dev_patient_identity(PATIENT, deployment.chain_id, deployment.address)
            recipients = [*await registry.recipients(), str(patient_key.to_public())]
            if len(recipients) == 1:
                raise DemoError("no oracle has published an encryption key on chain; is the stack up?")
            patient = dev_account(PATIENT).address
            rows = []
            for index in range(images):
                malignant = index % 2 == 1
                envelope = seal_image(
                    synth_png(rng, malignant),
                    patient,
                    deployment.chain_id,
                    deployment.address,
                    recipients,
                    reply_to=recipients[-1],  # the patient's key: the heat map comes back to it
                )
                pin = await pinata.pin_file(envelope, f"demo-{index}.age")
                rows.append(
                    DemoRow("malignant" if malignant else "benign", pin.cid, image_id_for(patient, pin.cid))
                )
            await _register(w3, registry, [row.cid for row in rows])
            mined = time.monotonic()
            await _follow(registry, rows, mined, timeout, progress)
            token = await _sign_in(http, api)
            for row in rows:
                if row.status == "classified":
                    document = await _document(http, api, token, row.image_id, timeout=30)
                    on_chain = (await registry.image(row.image_id)).result_hash
                    row.label = document["label"]
                    row.probability = document["probabilities"].get("malignant")
                    row.verified = "0x" + commitment(document).hex() == on_chain
                    row.heat_map = document["outputs"].get("grad_cam")
                elif row.status == "failed":
                    row.reason = await _reason(registry, deployment, row.image_id)
    except (aiohttp.ClientError, OSError) as exc:
        raise DemoError(f"cannot reach the stack ({exc}); is it up? (histochain dev up)") from exc
    finally:
        await w3.provider.disconnect()
    return rows


async def _follow(
    registry: Registry, rows: list[DemoRow], mined: float, timeout: float, progress: Any
) -> None:
    pending = {row.image_id: row for row in rows}
    deadline = mined + timeout
    while pending:
        if time.monotonic() > deadline:
            raise DemoError(
                f"{len(pending)} image(s) not answered within {timeout:.0f}s; see data/logs/oracle.log"
            )
        statuses = await registry.statuses(list(pending))
        for image_id, status in statuses.items():
            if status != Status.PENDING:
                row = pending.pop(image_id)
                row.status = status.name.lower()
                row.latency = time.monotonic() - mined
                if progress is not None:
                    progress.update(1)
        await asyncio.sleep(POLL)


async def _reason(registry: Registry, deployment: Deployment, image_id: str) -> str:
    logs = await registry.contract.events.ClassificationFailed.get_logs(
        from_block=deployment.block, argument_filters={"imageId": bytes.fromhex(image_id[2:])}
    )
    return FailureReason(logs[0]["args"]["reason"]).name.lower() if logs else "unknown"


def table(rows: list[DemoRow]) -> str:
    header = ("#", "truth", "CID", "status", "label", "P(malignant)", "verified", "heat map", "latency")
    lines = [header]
    for number, row in enumerate(rows, 1):
        verified = {True: "✓", False: "✗ MISMATCH", None: "-"}[row.verified]
        lines.append(
            (
                str(number),
                row.truth,
                f"{row.cid[:14]}…{row.cid[-6:]}",
                row.status if row.reason is None else f"failed: {row.reason}",
                row.label or "-",
                "-" if row.probability is None else f"{row.probability:.3f}",
                verified,
                "-" if row.heat_map is None else f"{row.heat_map[:10]}…",
                "-" if row.latency is None else f"{row.latency:.1f} s",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)
