"""Sending the oracle's transactions: one signer, EIP-1559 fees, receipts awaited, transient RPC
errors retried. Callers re-check on-chain status before sending.

Nonces: sends are serialised by one lock and each takes the chain's pending count at that
moment. A nonce cached across sends goes stale when a reorg drops the signer's mined
transactions, and a gapped nonce then waits in the mempool forever."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3.logs import DISCARD

from oracle.backoff import pause
from oracle.chain.registry import ChainError, Registry, hex32


@dataclass(frozen=True)
class Sent:
    tx_hash: str
    block_number: int
    status: int
    posted: frozenset[str]
    failed: frozenset[str]
    gas_used: int


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
    ) -> None:
        self.registry, self.account = registry, account
        self.w3: AsyncWeb3[Any] = registry.w3
        self.receipt_timeout, self.attempts, self.gas_margin = receipt_timeout, attempts, gas_margin
        self._lock = asyncio.Lock()

    async def post_results(self, items: Sequence[tuple[str, str]], on_signed: OnSigned | None = None) -> Sent:
        """postResults for several, postResult for one: (imageId, resultHash) hex pairs."""
        ids = [bytes.fromhex(i[2:]) for i, _ in items]
        hashes = [bytes.fromhex(h[2:]) for _, h in items]
        functions = self.registry.contract.functions
        call = (
            functions.postResult(ids[0], hashes[0]) if len(items) == 1 else functions.postResults(ids, hashes)
        )
        return await self._send(call, on_signed)

    async def report_failure(self, image_id: str, reason: int, on_signed: OnSigned | None = None) -> Sent:
        call = self.registry.contract.functions.reportFailure(bytes.fromhex(image_id[2:]), reason)
        return await self._send(call, on_signed)

    async def _send(self, call: Any, on_signed: OnSigned | None) -> Sent:
        """`on_signed(tx_hash)` runs before the transaction is broadcast, so a crash after
        broadcasting leaves a record of what may be in flight."""
        async with self._lock:
            for attempt in range(self.attempts):
                try:
                    return await self._send_once(call, on_signed)
                except TRANSIENT as exc:
                    last: Exception = exc
                except Web3RPCError as exc:
                    if "nonce" not in str(exc).lower():
                        raise ChainError(f"transaction refused: {exc}") from exc
                    last = exc
                await pause(attempt)
            raise ChainError(f"transaction not sent after {self.attempts} attempts: {last}")

    async def _send_once(self, call: Any, on_signed: OnSigned | None) -> Sent:
        nonce, latest, priority = await asyncio.gather(
            self.w3.eth.get_transaction_count(self.account.address, "pending"),
            self.w3.eth.get_block("latest"),
            self.w3.eth.max_priority_fee,
        )
        base = int(latest.get("baseFeePerGas", 0))
        params: dict[str, Any] = {
            "from": self.account.address,
            "nonce": nonce,
            "chainId": self.registry.deployment.chain_id,
            "maxPriorityFeePerGas": priority,
            "maxFeePerGas": 2 * base + priority,
        }
        try:
            estimate = await call.estimate_gas(params)
        except ContractLogicError as exc:
            raise ChainError(f"the registry would revert: {exc}") from exc
        tx = await call.build_transaction(params | {"gas": int(estimate * self.gas_margin)})
        signed = self.account.sign_transaction(tx)
        if on_signed is not None:
            await on_signed(hex32(signed.hash))
        tx_hash = await self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)
        events = self.registry.contract.events
        posted = {
            hex32(e["args"]["imageId"])
            for e in events.ResultPosted().process_receipt(receipt, errors=DISCARD)
        }
        failed = {
            hex32(e["args"]["imageId"])
            for e in events.ClassificationFailed().process_receipt(receipt, errors=DISCARD)
        }
        return Sent(
            tx_hash=hex32(tx_hash),
            block_number=int(receipt["blockNumber"]),
            status=int(receipt["status"]),
            posted=frozenset(posted),
            failed=frozenset(failed),
            gas_used=int(receipt["gasUsed"]),
        )
