"""The ImageRegistry as the oracle sees it, over web3.py's AsyncWeb3."""

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_utils.address import to_checksum_address
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.exceptions import BlockNotFound

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


def hex32(value: bytes) -> str:
    return "0x" + bytes(value).hex()


class Registry:
    def __init__(self, w3: AsyncWeb3[Any], deployment: Deployment) -> None:
        self.w3, self.deployment = w3, deployment
        self.contract: AsyncContract = w3.eth.contract(address=deployment.address, abi=deployment.abi)

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
        return Status(await self.contract.functions.statusOf(bytes.fromhex(image_id[2:])).call())

    async def statuses(self, image_ids: list[str]) -> dict[str, Status]:
        return {image_id: await self.status(image_id) for image_id in image_ids}

    async def block_hash(self, number: int) -> str:
        block = await self.w3.eth.get_block(number)
        return hex32(block["hash"])

    async def block_hash_or_none(self, number: int) -> str | None:
        """None when the chain is not (or no longer) that long."""
        try:
            return await self.block_hash(number)
        except BlockNotFound:
            return None
