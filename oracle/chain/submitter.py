"""Sending the oracle's transactions: one signer, EIP-1559 fees, receipts awaited, transient RPC
errors retried until the transaction is broadcast, never after. Callers re-check on-chain status
before sending, and again when a transaction is dropped or its receipt does not come: what
was worth sending a minute ago (before a reorg, say) may not be now.

Nonces: sends are serialised by one lock and each takes the chain's pending count at that
moment. A nonce cached across sends goes stale when a reorg drops the signer's mined
transactions, and a gapped nonce then waits in the mempool forever."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.datastructures import SignedTransaction
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3RPCError
from web3.types import TxReceipt

from oracle.backoff import pause
from oracle.chain.abi import Event, Function
from oracle.chain.errors import ChainError
from oracle.chain.registry import Registry, hex32


@dataclass(frozen=True)
class Sent:
    """A mined transaction: `posted` maps each image it settled to the result hash its
    ResultPosted event carried, `failed` the images its ClassificationFailed events name."""

    tx_hash: str
    block_number: int
    status: int
    posted: Mapping[str, str]
    failed: frozenset[str]
    gas_used: int


class NotMined(ChainError):
    """A broadcast transaction left the mempool unmined (a reorg, a replacement) or its receipt
    did not come in time. It is not sent again blindly: the caller looks at the chain first."""


TRANSIENT = (OSError, asyncio.TimeoutError, TimeExhausted)
OnSigned = Callable[[str], Awaitable[None]]


class Submitter:
    def __init__(
        self,
        registry: Registry,
        account: LocalAccount,
        receipt_timeout: float = 120,
        attempts: int = 5,
        gas_margin: float = 1.25,
        receipt_poll: float = 0.1,
        dropped_after: int = 3,
    ) -> None:
        self.registry, self.account = registry, account
        self.w3: AsyncWeb3[Any] = registry.w3
        self.receipt_timeout, self.attempts, self.gas_margin = receipt_timeout, attempts, gas_margin
        self.receipt_poll, self.dropped_after = receipt_poll, dropped_after
        self._lock = asyncio.Lock()
        self._refund_gas: int | None = None  # the registry's REFUND_GAS, read once
        abi = registry.deployment.abi
        self._functions = {
            name: Function(abi, name)
            for name in ("postResult", "postResults", "reportFailure", "reportFailures")
        }
        self._posted, self._failed = Event(abi, "ResultPosted"), Event(abi, "ClassificationFailed")

    async def post_results(self, items: Sequence[tuple[str, str]], on_signed: OnSigned | None = None) -> Sent:
        """postResults for several, postResult for one: (imageId, resultHash) hex pairs."""
        ids = [bytes.fromhex(i[2:]) for i, _ in items]
        hashes = [bytes.fromhex(h[2:]) for _, h in items]
        one, many = self._functions["postResult"], self._functions["postResults"]
        data = one.encode(ids[0], hashes[0]) if len(items) == 1 else many.encode(ids, hashes)
        return await self._send(data, on_signed)

    async def report_failures(
        self, items: Sequence[tuple[str, int]], on_signed: OnSigned | None = None
    ) -> Sent:
        """reportFailures for several, reportFailure for one: (imageId hex, FailureReason) pairs."""
        ids = [bytes.fromhex(i[2:]) for i, _ in items]
        reasons = [reason for _, reason in items]
        one, many = self._functions["reportFailure"], self._functions["reportFailures"]
        data = one.encode(ids[0], reasons[0]) if len(items) == 1 else many.encode(ids, reasons)
        if self._refund_gas is None:
            self._refund_gas = int(await self.registry.contract.functions.REFUND_GAS().call())
        # an owner's receive() may burn its whole refund allowance when mined, not when estimated
        return await self._send(data, on_signed, len(items) * self._refund_gas)

    async def _send(self, data: bytes, on_signed: OnSigned | None, headroom: int = 0) -> Sent:
        """`on_signed(tx_hash)` runs before the transaction is broadcast, so a crash after
        broadcasting leaves a record of what may be in flight; it may raise to stop the send."""
        async with self._lock:
            tx_hash = await self._broadcast(data, on_signed, headroom)
            return self._sent(tx_hash, await self._receipt(tx_hash))

    async def _broadcast(self, data: bytes, on_signed: OnSigned | None, headroom: int) -> str:
        last: Exception | None = None
        for attempt in range(self.attempts):
            try:
                signed = await self._sign(data, headroom)
                if on_signed is not None:
                    await on_signed(hex32(signed.hash))
                return hex32(await self.w3.eth.send_raw_transaction(signed.raw_transaction))
            except TRANSIENT as exc:
                last = exc
            except Web3RPCError as exc:
                if "nonce" not in str(exc).lower():
                    raise ChainError(f"transaction refused: {exc}") from exc
                last = exc
            await pause(attempt)
        raise ChainError(f"transaction not sent after {self.attempts} attempts: {last}")

    async def _sign(self, data: bytes, headroom: int) -> SignedTransaction:
        """`headroom`: gas the estimate cannot see but the transaction may spend."""
        nonce, latest, priority = await asyncio.gather(
            self.w3.eth.get_transaction_count(self.account.address, "pending"),
            self.w3.eth.get_block("latest"),
            self.w3.eth.max_priority_fee,
        )
        base = int(latest.get("baseFeePerGas", 0))
        tx: dict[str, Any] = {
            "type": 2,
            "from": self.account.address,
            "to": self.registry.deployment.address,
            "data": "0x" + data.hex(),
            "value": 0,
            "nonce": nonce,
            "chainId": self.registry.deployment.chain_id,
            "maxPriorityFeePerGas": priority,
            "maxFeePerGas": 2 * base + priority,
        }
        try:
            estimate = await self.w3.eth.estimate_gas(tx)  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise ChainError(f"the registry would revert: {exc}") from exc
        return self.account.sign_transaction(tx | {"gas": int(estimate * self.gas_margin) + headroom})

    async def _receipt(self, tx_hash: str) -> TxReceipt:
        """The receipt once mined. `NotMined` when the node has forgotten the transaction for
        `dropped_after` polls in a row, or after `receipt_timeout` seconds."""
        deadline = time.monotonic() + self.receipt_timeout
        missing = 0
        while True:
            try:
                return await self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                missing = missing + 1 if await self._forgotten(tx_hash) else 0
            except TRANSIENT:
                pass
            if missing >= self.dropped_after:
                raise NotMined(f"transaction {tx_hash} was dropped unmined")
            if time.monotonic() >= deadline:
                raise NotMined(f"no receipt for transaction {tx_hash} after {self.receipt_timeout:.0f} s")
            await asyncio.sleep(self.receipt_poll)

    async def _forgotten(self, tx_hash: str) -> bool:
        """Neither mined nor in the node's mempool (a node that does not answer has not forgotten)."""
        try:
            await self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return True
        except TRANSIENT:
            return False
        return False

    def _sent(self, tx_hash: str, receipt: TxReceipt) -> Sent:
        """What the receipt's logs from the registry say it settled."""
        posted, failed = {}, set()
        registry = self.registry.deployment.address
        for log in receipt["logs"]:
            if log["address"] != registry:
                continue
            if self._posted.matches(log):
                args = self._posted.decode(log)
                posted[hex32(args["imageId"])] = hex32(args["resultHash"])
            elif self._failed.matches(log):
                failed.add(hex32(self._failed.decode(log)["imageId"]))
        return Sent(
            tx_hash=tx_hash,
            block_number=int(receipt["blockNumber"]),
            status=int(receipt["status"]),
            posted=posted,
            failed=frozenset(failed),
            gas_used=int(receipt["gasUsed"]),
        )
