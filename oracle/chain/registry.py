"""The ImageRegistry as the oracle sees it, over web3.py's AsyncWeb3."""

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError, EncodingError
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types, get_abi_output_types
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.exceptions import BlockNotFound, TransactionNotFound
from web3.types import RPCEndpoint
from web3.utils.abi import get_abi_element

from oracle.chain.deployment import Deployment
from oracle.errors import HistochainError


class Status(IntEnum):
    NONE, PENDING, CLASSIFIED, FAILED, CANCELLED = range(5)


class ChainError(HistochainError):
    """The RPC endpoint or the chain did not answer as expected."""


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


def hex32(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def image_id_for(owner: str, cid: str) -> str:
    """The id `owner` registers `cid` under: keccak256(abi.encodePacked(owner, bytes(cid)))."""
    return hex32(keccak(bytes.fromhex(owner.removeprefix("0x")) + cid.encode()))


class _View:
    """A view function resolved once. web3's contract functions look the ABI up and validate all
    of it on every call (about 2 ms of CPU here); the daemon reads each image's status several
    times, so its reads go through these instead."""

    def __init__(self, abi: Any, name: str) -> None:
        element = get_abi_element(abi, name)
        self.name = name
        self.selector = function_abi_to_4byte_selector(element)
        self.inputs = get_abi_input_types(element)
        self.outputs = get_abi_output_types(element)

    def encode(self, *args: Any) -> bytes:
        return self.selector + encode(self.inputs, args)

    def decode(self, answer: bytes) -> tuple[Any, ...]:
        """Only an answer that is exactly the encoding of what it decodes to: eth_abi's decoder may
        be lenient (another package can leave it padding short input with zeros)."""
        cause: Exception | None = None
        try:
            values = tuple(decode(self.outputs, answer))
            if encode(self.outputs, values) == answer:
                return values
        except (DecodingError, EncodingError) as exc:
            cause = exc
        shown = f"0x{answer[:72].hex()}"
        raise ChainError(f"{self.name}: the RPC answered {shown}, which its ABI cannot decode") from cause


class Registry:
    def __init__(self, w3: AsyncWeb3[Any], deployment: Deployment) -> None:
        self.w3, self.deployment = w3, deployment
        self.contract: AsyncContract = w3.eth.contract(address=deployment.address, abi=deployment.abi)
        self._status_of = _View(deployment.abi, "statusOf")
        self._get_image = _View(deployment.abi, "getImage")
        self._encryption_keys = _View(deployment.abi, "encryptionKeys")

    async def _read(self, view: _View, *args: Any) -> tuple[Any, ...]:
        answer = await self.w3.eth.call({"to": self.deployment.address, "data": view.encode(*args)})
        return view.decode(bytes(answer))

    async def _read_many(self, view: _View, calls: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
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
        logs = await self.contract.events.ImageRegistered.get_logs(from_block=from_block, to_block=to_block)
        return [self._registration(log) for log in logs]

    @staticmethod
    def _registration(log: Any) -> Registration:
        args = log["args"]
        return Registration(
            image_id=hex32(args["imageId"]),
            owner=to_checksum_address(args["owner"]),
            model_id=hex32(args["modelId"]),
            cid=str(args["cid"]),
            block_number=int(log["blockNumber"]),
            block_hash=hex32(log["blockHash"]),
            transaction=hex32(log["transactionHash"]),
            log_index=int(log["logIndex"]),
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
        """The oracle keys on chain as age recipients: what a patient's envelope is sealed to."""
        from oracle.crypto.keys import recipient_of_key

        return [recipient_of_key(key) for key in (await self.encryption_keys()).values()]

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
