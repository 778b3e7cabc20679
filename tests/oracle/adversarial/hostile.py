"""What an attacker puts on IPFS, and the IPFS network the oracle reads it from.

The DAGs are published blocks, correctly hashed, that make no acceptable file; the network is a
real HTTP gateway in front of the real local node: it serves the attacker's blocks (the node has
never seen them), hangs on CIDs nobody provides, can answer wrong bytes for chosen CIDs, and
passes everything else through to the node."""

import asyncio
import base64
import hashlib
import os
from collections import Counter

import aiohttp
from aiohttp import web
from multiformats import CID, varint

from tests.oracle.ipfs.dags import RAW_PREFIX, Dag, pb_node, unixfs
from tests.support import serve_gateway

PB_PREFIX = b"\x01\x70\x12\x20"  # CIDv1, dag-pb, sha2-256, 32 bytes


def padded_header(envelope: bytes, stanzas: int, body: int = 43) -> bytes:
    """An age envelope with grease-like stanzas of `body` base64 characters added to its header:
    pyrage parses headers in quadratic time (str4d/rage#368). The MAC no longer matches, which
    pyrage finds only after parsing the whole header."""
    start = envelope.index(b"\n-> ") + 1
    line = base64.b64encode(bytes(body * 3 // 4)).rstrip(b"=")
    extra = b"".join(b"-> pad%d\n%s\n" % (i, line) for i in range(stanzas))
    return envelope[:start] + extra + envelope[start:]


def exponential(depth: int, honest_sizes: bool) -> Dag:
    """Every node links the same child twice: 2^depth leaves in depth + 1 blocks. With honest
    sizes the root declares 2^depth leaves' bytes; lying, each node declares two bytes."""
    dag = Dag()
    child = dag.raw(os.urandom(16))
    for _ in range(depth):
        child = (
            dag.node([child, child])
            if honest_sizes
            else dag.node([child, child], filesize=2, blocksizes=(1, 1))
        )
    return dag


def truncated_varint() -> Dag:
    """A file node whose UnixFS filesize field stops inside its varint (a ValueError, once)."""
    dag = Dag()
    leaf = dag.raw(os.urandom(8))
    dag.node([leaf], data=b"\x08\x02\x18\xff")
    return dag


def many_tiny_blocks(count: int, fanout: int = 1000) -> tuple[str, bytes]:
    """A real two-level file of `count` 4-byte raw leaves as a CAR (root CID, CAR bytes), built
    from bytes directly: multiformats objects for 100k blocks would take the test seconds."""
    sections, parents, sizes = [], [], []
    leaves = [os.urandom(4) for _ in range(count)]
    for start in range(0, count, fanout):
        group = leaves[start : start + fanout]
        links = [RAW_PREFIX + hashlib.sha256(leaf).digest() for leaf in group]
        sections += [link + leaf for link, leaf in zip(links, group, strict=True)]
        size = 4 * len(group)
        block = pb_node(links, unixfs(filesize=size, blocksizes=(4,) * len(group)))
        parent = PB_PREFIX + hashlib.sha256(block).digest()
        sections.append(parent + block)
        parents.append(parent)
        sizes.append(size)
    root_block = pb_node(parents, unixfs(filesize=sum(sizes), blocksizes=tuple(sizes)))
    root = CID.decode(PB_PREFIX + hashlib.sha256(root_block).digest()).set(base="base32")
    sections.append(bytes(root) + root_block)
    header = Dag(root=root).car()  # the header only: this Dag holds no blocks
    return str(root), header + b"".join(varint.encode(len(s)) + s for s in sections)


class Network:
    """The gateway the oracle asks first."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.published: dict[str, bytes] = {}  # CID -> the CAR an attacker serves for it
        self.unanswered: set[str] = set()
        self.lying: set[str] = set()  # honest CIDs answered with one byte flipped
        self.lies: Counter[str] = Counter()
        self._released = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        self._session = aiohttp.ClientSession()
        self._runner, url = await serve_gateway(self.handle)
        return url

    async def close(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        cid = request.match_info["cid"]
        if cid in self.published:
            return web.Response(body=self.published[cid], content_type="application/vnd.ipld.car")
        if cid in self.unanswered:
            await self._released.wait()
            return web.Response(status=504)
        assert self._session is not None
        async with self._session.get(self.node + request.path_qs) as upstream:
            body = await upstream.read()
            if upstream.status == 200 and cid in self.lying:
                body = body[:-1] + bytes([body[-1] ^ 1])
                self.lies[cid] += 1
            return web.Response(status=upstream.status, body=body, content_type=upstream.content_type)
