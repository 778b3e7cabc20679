"""What the daemon suites share: a deployed registry on anvil, the local IPFS node, and the
patient's side of a registration, as the page does it."""

import asyncio
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import AsyncWeb3
from web3.logs import DISCARD

from oracle.chain.deployment import Deployment
from oracle.chain.registry import Registry, Status, hex32
from oracle.dev.anvil import dev_account
from oracle.ipfs.pinata import PinataClient
from oracle.ml.card import ModelCard
from oracle.settings import Settings

PATIENT_ACCOUNTS = (2, 3, 4, 5)


@dataclass
class Chain:
    rpc: str
    deployment: Deployment


@dataclass
class Stack:
    settings: Settings
    deployment: Deployment
    w3: AsyncWeb3[Any]
    registry: Registry
    pinata: PinataClient
    card: ModelCard


async def register(stack: Stack, data: bytes, patient: int) -> str:
    """As the page does: upload, then registerImage(cid, 0) signed by the patient's wallet."""
    return await send_registration(stack, (await stack.pinata.pin_file(data, "image.png", 1)).cid, patient)


async def send_registration(stack: Stack, cid: str, patient: int) -> str:
    account = dev_account(patient)
    call = stack.registry.contract.functions.registerImage(cid, b"\x00" * 32)
    tx = await call.build_transaction(
        {
            "from": account.address,
            "nonce": await stack.w3.eth.get_transaction_count(account.address, "pending"),
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


async def until_jobs_settled(databases: list[Path], image_ids: list[str], timeout: float = 60) -> None:
    """Polls the oracles' own records until each has finished every job (confirmed or superseded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    marks = ",".join("?" * len(image_ids))
    while True:
        open_jobs = 0
        for path in databases:
            with sqlite3.connect(path) as db:
                query = (
                    f"SELECT count(*) FROM jobs WHERE image_id IN ({marks})"
                    " AND state NOT IN ('confirmed', 'superseded')"
                )
                open_jobs += db.execute(query, image_ids).fetchone()[0]
        if open_jobs == 0:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{open_jobs} jobs still open after {timeout}s")
        await asyncio.sleep(0.2)


async def rpc(stack: Stack, method: str, *params: Any) -> Any:
    return (await stack.w3.provider.make_request(method, list(params)))["result"]  # type: ignore[arg-type]
