"""The ImageRegistry as the oracle sees it, over web3.py's AsyncWeb3."""

import logging
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.exceptions import BlockNotFound, TransactionNotFound
from web3.types import RPCEndpoint

from oracle.chain import web3_lock
from oracle.chain.abi import Event, Function
from oracle.chain.deployment import Deployment
from oracle.chain.errors import ChainError

web3_lock.apply()  # before any request: web3's session lock, safe to cancel

log = logging.getLogger("histochain.oracle")


class Status(IntEnum):
    NONE, PENDING, CLASSIFIED, FAILED, CANCELLED = range(5)


@dataclass(frozen=True)
class Registration:
    image_id: str
    owner: str
    model_id: str
    cid: str
    block_number: int
    block_hash: str
    transaction: str
    log_index: int


@dataclass(frozen=True)
class ImageRecord:
    """`getImage` as decoded: what the chain says about one image now."""

    owner: str
    status: Status
    model_id: str
    result_hash: str
    registered_at: int
    deadline: int
    fee_paid: int


HASH = re.compile(r"0x[0-9a-fA-F]{64}")


def hex32(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def image_id_for(owner: str, cid: str) -> str:
    """The id `owner` registers `cid` under: keccak256(abi.encodePacked(owner, bytes(cid)))."""
    return hex32(keccak(bytes.fromhex(owner.removeprefix("0x")) + cid.encode()))


class Registry:
    def __init__(self, w3: AsyncWeb3[Any], deployment: Deployment) -> None:
        self.w3, self.deployment = w3, deployment
        self.contract: AsyncContract = w3.eth.contract(address=deployment.address, abi=deployment.abi)
        self._status_of = Function(deployment.abi, "statusOf")
        self._get_image = Function(deployment.abi, "getImage")
        self._encryption_keys = Function(deployment.abi, "encryptionKeys")
        self.registered = Event(deployment.abi, "ImageRegistered")

    async def _read(self, view: Function, *args: Any) -> tuple[Any, ...]:
        answer = await self.w3.eth.call({"to": self.deployment.address, "data": view.encode(*args)})
        return view.decode(bytes(answer))

    async def _read_many(self, view: Function, calls: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Many reads as one JSON-RPC batch of eth_call: one request (and one round trip) per batch
        of images, not one per image; each answer is checked like a single read's."""
        if not calls:
            return []
        to = self.deployment.address
        batch = [
            (RPCEndpoint("eth_call"), [{"to": to, "data": "0x" + view.encode(*c).hex()}, "latest"])
            for c in calls
        ]
        answers = await self.w3.provider.make_batch_request(batch)
        if not isinstance(answers, list) or len(answers) != len(calls):
            raise ChainError(
                f"{view.name}: the RPC answered a batch of {len(calls)} calls with {str(answers)[:120]}"
            )
        decoded = []
        for answer in answers:
            result = answer.get("result") if isinstance(answer, dict) else None
            if not isinstance(result, str) or not result.startswith("0x"):
                raise ChainError(f"{view.name}: the RPC answered {str(answer)[:120]} in a batch")
            try:
                data = bytes.fromhex(result[2:])
            except ValueError as exc:
                raise ChainError(f"{view.name}: the RPC answered {result[:72]}, which is not hex") from exc
            decoded.append(view.decode(data))
        return decoded

    async def check_chain(self) -> None:
        """Refuses to run against the wrong chain or a chain without the registry."""
        chain_id = await self.w3.eth.chain_id
        if chain_id != self.deployment.chain_id:
            raise ChainError(f"RPC is on chain {chain_id}, the deployment on {self.deployment.chain_id}")
        if not await self.w3.eth.get_code(self.deployment.address):
            raise ChainError(f"no contract at {self.deployment.address} on chain {chain_id}: redeploy")

    async def registrations(self, from_block: int, to_block: int) -> list[Registration]:
        """ImageRegistered logs of the registry in a block range, read and decoded as they came
        (one raw eth_getLogs; every field checked here)."""
        query = {
            "address": self.deployment.address,
            "topics": ["0x" + self.registered.topic.hex()],
            "fromBlock": hex(from_block),
            "toBlock": hex(to_block),
        }
        answer = await self.w3.provider.make_request(RPCEndpoint("eth_getLogs"), [query])
        logs = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(logs, list):
            raise ChainError(f"eth_getLogs {from_block}..{to_block}: the RPC answered {str(answer)[:160]}")
        return [self._registration(log, from_block, to_block) for log in logs]

    def _registration(self, log: Any, from_block: int, to_block: int) -> Registration:
        try:
            address = to_checksum_address(log["address"])
            number = int(log["blockNumber"], 16)
            block_hash, transaction = log["blockHash"], log["transactionHash"]
            log_index = int(log["logIndex"], 16)
            hashes_ok = all(HASH.fullmatch(h) for h in (block_hash, transaction))
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainError(f"eth_getLogs: the RPC answered a malformed log {str(log)[:160]}") from exc
        if address != self.deployment.address or not from_block <= number <= to_block or not hashes_ok:
            raise ChainError(f"eth_getLogs: the RPC answered a log we did not ask for: {str(log)[:160]}")
        args = self.registered.decode(log)
        return Registration(
            image_id=hex32(args["imageId"]),
            owner=to_checksum_address(args["owner"]),
            model_id=hex32(args["modelId"]),
            cid=str(args["cid"]),
            block_number=number,
            block_hash=block_hash.lower(),
            transaction=transaction.lower(),
            log_index=log_index,
        )

    async def status(self, image_id: str) -> Status:
        (status,) = await self._read(self._status_of, bytes.fromhex(image_id[2:]))
        return Status(status)

    async def statuses(self, image_ids: list[str]) -> dict[str, Status]:
        found = await self._read_many(self._status_of, [(bytes.fromhex(i[2:]),) for i in image_ids])
        return {image_id: Status(status) for image_id, (status,) in zip(image_ids, found, strict=True)}

    async def image(self, image_id: str) -> ImageRecord:
        return self._record(await self._read(self._get_image, bytes.fromhex(image_id[2:])))

    @staticmethod
    def _record(answer: tuple[Any, ...]) -> ImageRecord:
        ((owner, status, model_id, result_hash, registered_at, deadline, fee_paid),) = answer
        return ImageRecord(
            owner=to_checksum_address(owner),
            status=Status(status),
            model_id=hex32(model_id),
            result_hash=hex32(result_hash),
            registered_at=int(registered_at),
            deadline=int(deadline),
            fee_paid=int(fee_paid),
        )

    async def images(self, image_ids: list[str]) -> list[ImageRecord]:
        answers = await self._read_many(self._get_image, [(bytes.fromhex(i[2:]),) for i in image_ids])
        return [self._record(answer) for answer in answers]

    async def encryption_keys(self) -> dict[str, bytes]:
        """Each current oracle's published X25519 public key (what patients encrypt to)."""
        oracles, keys = await self._read(self._encryption_keys)
        return {to_checksum_address(o): bytes(k) for o, k in zip(oracles, keys, strict=True)}

    async def recipients(self) -> list[str]:
        """The oracle keys on chain as age recipients: what a patient's envelope is sealed to. A
        key no one can seal to is left out (one oracle's bad key must not stop every patient)."""
        from oracle.crypto.keys import KeyFormatError, check_public_key, recipient_of_key

        usable = []
        for oracle, key in (await self.encryption_keys()).items():
            try:
                usable.append(recipient_of_key(check_public_key(key)))
            except KeyFormatError as exc:
                log.warning("oracle %s's encryption key is left out: %s", oracle, exc)
        return usable

    async def head(self) -> int:
        """The chain's latest block number."""
        return int(await self.w3.eth.block_number)

    async def block_hash(self, number: int) -> str:
        block = await self.w3.eth.get_block(number)
        return hex32(block["hash"])

    async def block_hash_or_none(self, number: int) -> str | None:
        """None when the chain is not (or no longer) that long."""
        try:
            return await self.block_hash(number)
        except BlockNotFound:
            return None

    async def mined_in(self, tx_hash: str) -> int | None:
        """The block the canonical chain holds `tx_hash` in; None when it holds it nowhere."""
        try:
            receipt = await self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        return int(receipt["blockNumber"])
