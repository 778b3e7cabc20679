"""In-memory stand-ins for the chain and the transaction sender, behind the daemon's Protocols
(oracle/daemon/ports.py): a chain of numbered blocks that can be reorganised at will, and a
sender that settles what it is given in a new block, or reverts, or raises, as told."""

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from oracle.chain.anvil_accounts import dev_account
from oracle.chain.registry import ImageRecord, Registration, Status
from oracle.chain.submitter import Sent
from oracle.daemon.ports import OnSigned

OWNER = dev_account(2).address
MODEL = "0x" + "cd" * 32
CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


@dataclass(frozen=True)
class FakeDeployment:
    block: int = 1
    chain_id: int = 313370
    address: str = "0x" + "42" * 20


@dataclass
class Block:
    number: int
    hash: str
    registrations: list[Registration] = field(default_factory=list)
    transactions: set[str] = field(default_factory=set)


class FakeChain:
    """Block 0 is genesis; `mine` appends, `reorg` replaces the newest blocks with new ones."""

    def __init__(self) -> None:
        self.deployment = FakeDeployment()
        self._hashes = itertools.count(1)
        self.blocks = [self._new(0)]
        self.records: dict[str, ImageRecord] = {}
        self.log_reads: list[tuple[int, int]] = []
        self.on_read_logs: list[Callable[[], None]] = []  # run once, mid-read: a reorg while reading

    def _new(self, number: int) -> Block:
        return Block(number, "0x" + f"{next(self._hashes):064x}")

    def mine(self, *image_ids: str, transactions: tuple[str, ...] = ()) -> Block:
        block = self._new(len(self.blocks))
        for index, image_id in enumerate(image_ids):
            block.registrations.append(
                Registration(image_id, OWNER, MODEL, CID, block.number, block.hash, "0x" + "ef" * 32, index)
            )
            self.records[image_id] = ImageRecord(OWNER, Status.PENDING, MODEL, "0x" + "00" * 32, 0, 0, 0)
        block.transactions.update(transactions)
        self.blocks.append(block)
        return block

    def reorg(self, depth: int, then: int = 1) -> None:
        """Drops the newest `depth` blocks (with their registrations and transactions) and mines
        `then` empty blocks in their place."""
        for gone in self.blocks[-depth:]:
            for r in gone.registrations:
                self.records.pop(r.image_id, None)
        del self.blocks[-depth:]
        for _ in range(then):
            self.mine()

    async def check_chain(self) -> None:
        return None

    async def head(self) -> int:
        return len(self.blocks) - 1

    async def block_hash(self, number: int) -> str:
        return self.blocks[number].hash

    async def block_hash_or_none(self, number: int) -> str | None:
        return self.blocks[number].hash if number < len(self.blocks) else None

    async def registrations(self, from_block: int, to_block: int) -> list[Registration]:
        self.log_reads.append((from_block, to_block))
        found = [r for b in self.blocks[from_block : to_block + 1] for r in b.registrations]
        while self.on_read_logs:
            self.on_read_logs.pop()()
        return found

    async def status(self, image_id: str) -> Status:
        return self.records[image_id].status

    async def image(self, image_id: str) -> ImageRecord:
        return self.records[image_id]

    async def images(self, image_ids: list[str]) -> list[ImageRecord]:
        return [self.records[i] for i in image_ids]

    async def mined_in(self, tx_hash: str) -> int | None:
        return next((b.number for b in self.blocks if tx_hash in b.transactions), None)


class FakeSender:
    """Mines each call's outcomes into a new block of `chain`. `revert` makes the next
    transaction revert (mined, nothing settled); so does every postResults that carries an image
    of `refused` (as the registry reverts a whole batch over one bad result, a zero hash say);
    `explode` makes the next call raise."""

    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain
        self.account: LocalAccount = dev_account(1)
        self.sent: list[tuple[str, list[str]]] = []  # (method, image ids) of each mined transaction
        self.calls: asyncio.Queue[tuple[str, list[str]]] = asyncio.Queue()  # every call, as it ends
        self.revert = False
        self.refused: set[str] = set()
        self.explode: Exception | None = None
        self._tx = itertools.count(1)

    async def post_results(self, items: list[tuple[str, str]], on_signed: OnSigned | None = None) -> Sent:
        return await self._send("postResults", [i for i, _ in items], dict(items), on_signed)

    async def report_failures(self, items: list[tuple[str, int]], on_signed: OnSigned | None = None) -> Sent:
        return await self._send("reportFailures", [i for i, _ in items], {}, on_signed)

    async def _send(
        self, method: str, ids: list[str], hashes: dict[str, str], on_signed: OnSigned | None
    ) -> Sent:
        if self.explode is not None:
            exc, self.explode = self.explode, None
            self.calls.put_nowait((method, ids))
            raise exc
        tx = "0x" + f"{next(self._tx):064x}"
        if on_signed is not None:
            await on_signed(tx)
        self.sent.append((method, ids))
        self.calls.put_nowait((method, ids))
        block = self.chain.mine(transactions=(tx,))
        if self.revert or (hashes and self.refused & set(ids)):
            self.revert = False
            return Sent(tx, block.number, 0, {}, frozenset(), 30_000)
        for image_id in ids:
            status = Status.CLASSIFIED if image_id in hashes else Status.FAILED
            record = self.chain.records[image_id]
            self.chain.records[image_id] = ImageRecord(
                record.owner, status, record.model_id, hashes.get(image_id, record.result_hash), 0, 0, 0
            )
        failed = frozenset(i for i in ids if i not in hashes)
        return Sent(tx, block.number, 1, hashes, failed, 50_000)
