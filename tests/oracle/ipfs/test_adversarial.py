"""Gateways that lie, break or stall: nothing unverified gets through, and the errors say why.

The hostile gateway is a real HTTP server in front of the real node; it tampers with what the
node serves (the failure under test), so the fetcher is exercised exactly as in production."""

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from multiformats import varint

from oracle.dev.ipfs import IpfsNode
from oracle.ipfs import cid as cids
from oracle.ipfs.errors import (
    ContentMismatch,
    ContentNotFound,
    ContentTooLarge,
    GatewayUnavailable,
    PinningError,
)
from oracle.ipfs.fetch import Fetched, GatewayFetcher
from oracle.ipfs.pinata import PinataClient
from tests.oracle.ipfs.dags import Dag, raw_sections
from tests.support import serve_gateway

Tamper = Callable[[str, bytes], bytes]


def split_car(car: bytes) -> tuple[bytes, list[bytes]]:
    """(header section, block sections), each with its varint length prefix."""
    sections, offset = [], 0
    while offset < len(car):
        length, size, _ = varint.decode_raw(car[offset : offset + 10])
        sections.append(car[offset : offset + size + length])
        offset += size + length
    return sections[0], sections[1:]


class HostileGateway:
    def __init__(self, upstream: str) -> None:
        self.upstream, self.requests = upstream, 0
        self.tamper: Tamper = lambda fmt, body: body
        self.status: int | None = None
        self.fail_first = 0
        self.hang = False
        self.released = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self.hang:
            await self.released.wait()
            return web.Response(status=503)
        if self.fail_first >= self.requests:
            return web.Response(status=503)
        if self.status is not None:
            return web.Response(status=self.status)
        async with aiohttp.ClientSession() as s, s.get(self.upstream + request.path_qs) as upstream:
            body = await upstream.read()
            fmt = request.query.get("format", "")
            return web.Response(
                status=upstream.status, body=self.tamper(fmt, body) if upstream.status == 200 else body
            )


@pytest.fixture
async def hostile(ipfs_node: IpfsNode) -> AsyncIterator[tuple[HostileGateway, str]]:
    gateway = HostileGateway(ipfs_node.url)
    runner, url = await serve_gateway(gateway.handle)
    yield gateway, url
    gateway.released.set()
    await runner.cleanup()


@dataclass
class Fetching:
    fetcher: GatewayFetcher
    attempts: int

    async def fetch(self, cid: str) -> Fetched:
        return await self.fetcher.fetch(cid, attempts=self.attempts, backoff=0.01)


@pytest.fixture
def make_fetcher(session: aiohttp.ClientSession) -> Callable[..., Fetching]:
    def make(*gateways: str, max_bytes: int = 1 << 20, timeout: float = 30.0, attempts: int = 2) -> Fetching:
        return Fetching(GatewayFetcher(session, list(gateways), max_bytes, timeout), attempts)

    return make


async def pinned(pinata: PinataClient, size: int, version: int = 1) -> tuple[str, bytes]:
    data = os.urandom(size)
    return (await pinata.pin_file(data, "x.bin", version)).cid, data


async def car_of(session: aiohttp.ClientSession, node: IpfsNode, cid: str) -> bytes:
    async with session.get(f"{node.url}/ipfs/{cid}?format=car") as response:
        assert response.status == 200
        return await response.read()


def flip_last_byte(fmt: str, body: bytes) -> bytes:
    return body[:-1] + bytes([body[-1] ^ 1])


async def test_altered_raw_block_is_rejected(hostile, make_fetcher, pinata):
    gateway, url = hostile
    cid, _ = await pinned(pinata, 1000)
    gateway.tamper = flip_last_byte
    with pytest.raises(GatewayUnavailable, match="answered wrongly: block does not hash to"):
        await make_fetcher(url).fetch(cid)


@pytest.mark.parametrize("version", [0, 1])
async def test_altered_block_in_a_car_is_rejected(hostile, make_fetcher, pinata, version):
    gateway, url = hostile
    cid, _ = await pinned(pinata, 600_000, version)
    gateway.tamper = flip_last_byte
    with pytest.raises(GatewayUnavailable, match="answered wrongly: block does not hash to"):
        await make_fetcher(url).fetch(cid)


async def test_car_missing_a_block_is_rejected(hostile, make_fetcher, pinata):
    gateway, url = hostile
    cid, _ = await pinned(pinata, 600_000)

    def drop_last_block(fmt: str, body: bytes) -> bytes:
        header, blocks = split_car(body)
        return header + b"".join(blocks[:-1])

    gateway.tamper = drop_last_block
    with pytest.raises(GatewayUnavailable, match=r"answered wrongly: truncated CAR: block .* is missing"):
        await make_fetcher(url).fetch(cid)


async def test_car_cut_mid_block_is_rejected(hostile, make_fetcher, pinata):
    gateway, url = hostile
    cid, _ = await pinned(pinata, 600_000)
    gateway.tamper = lambda fmt, body: body[: len(body) - 1000]
    with pytest.raises(GatewayUnavailable, match="answered wrongly: truncated CAR"):
        await make_fetcher(url).fetch(cid)


async def test_car_with_a_foreign_block_is_rejected(hostile, make_fetcher, pinata, session, ipfs_node):
    gateway, url = hostile
    cid, _ = await pinned(pinata, 600_000)
    other, _ = await pinned(pinata, 500_000)
    _, foreign = split_car(await car_of(session, ipfs_node, other))
    gateway.tamper = lambda fmt, body: body + foreign[-1]
    with pytest.raises(GatewayUnavailable, match=r"answered wrongly: .*not part of"):
        await make_fetcher(url).fetch(cid)


async def test_car_for_another_root_is_rejected(hostile, make_fetcher, pinata, session, ipfs_node):
    gateway, url = hostile
    cid, _ = await pinned(pinata, 600_000)
    other, _ = await pinned(pinata, 600_000)
    substitute = await car_of(session, ipfs_node, other)
    gateway.tamper = lambda fmt, body: substitute
    with pytest.raises(GatewayUnavailable, match="answered wrongly: the CAR's roots"):
        await make_fetcher(url).fetch(cid)


async def test_oversized_content_is_refused(make_fetcher, pinata, ipfs_node):
    cid, _ = await pinned(pinata, 2 << 20)
    with pytest.raises(ContentTooLarge):
        await make_fetcher(ipfs_node.url, max_bytes=1 << 20).fetch(cid)
    small, _ = await pinned(pinata, 200_000)
    with pytest.raises(ContentTooLarge):
        await make_fetcher(ipfs_node.url, max_bytes=100_000).fetch(small)


async def test_transient_failures_are_retried(hostile, make_fetcher, pinata):
    gateway, url = hostile
    cid, data = await pinned(pinata, 5000)
    gateway.fail_first = 2
    fetched = await make_fetcher(url, attempts=3).fetch(cid)
    assert fetched.data == data
    assert gateway.requests == 3


async def test_a_broken_gateway_falls_back_to_the_next(hostile, make_fetcher, pinata, ipfs_node):
    gateway, url = hostile
    cid, data = await pinned(pinata, 5000)
    gateway.status = 500
    fetched = await make_fetcher(url, ipfs_node.url, attempts=1).fetch(cid)
    assert fetched.data == data
    assert gateway.requests == 1


def padded(fmt: str, body: bytes) -> bytes:
    """The honest CAR plus 2,000 tiny blocks of nothing: each hashes to its own CID."""
    return body + raw_sections(2000)


@pytest.mark.parametrize("fault", ["wrong bytes", "400", "a truncated CAR", "a padded CAR"])
async def test_a_gateway_that_answers_wrongly_is_a_failed_gateway_not_a_verdict(
    hostile, make_fetcher, pinata, ipfs_node, fault
):
    """A first gateway that lies or refuses does not decide: the honest second one is asked."""
    gateway, url = hostile
    cid, data = await pinned(pinata, 600_000)
    if fault == "400":
        gateway.status = 400
    elif fault == "wrong bytes":
        gateway.tamper = flip_last_byte
    elif fault == "a truncated CAR":
        gateway.tamper = lambda fmt, body: body[: len(body) // 2]
    else:
        gateway.tamper = padded
    fetched = await make_fetcher(url, ipfs_node.url, attempts=1).fetch(cid)
    assert fetched.data == data
    assert gateway.requests == 1


async def test_hashed_blocks_that_make_no_file_are_a_verdict_from_one_gateway(make_fetcher, ipfs_node):
    """Blocks that hash to the CID are the content itself; no other gateway could answer otherwise,
    so the verdict stands although the second gateway has never heard of the CID."""
    dag = Dag()
    leaf = dag.raw(b"x" * 100)
    dag.node([leaf], filesize=1 << 19, blocksizes=(1 << 19,))
    car = dag.car()

    async def serve_the_dag(request: web.Request) -> web.Response:
        return web.Response(body=car)

    runner, url = await serve_gateway(serve_the_dag)
    try:
        with pytest.raises(ContentMismatch, match="declares"):
            await make_fetcher(url, ipfs_node.url, attempts=1).fetch(str(dag.root))
    finally:
        await runner.cleanup()


async def test_gateway_that_never_answers_times_out(hostile, make_fetcher, pinata):
    gateway, url = hostile
    cid, _ = await pinned(pinata, 10)
    gateway.hang = True
    with pytest.raises(GatewayUnavailable, match=r"no gateway gave it after 2 attempts .*timed out"):
        await make_fetcher(url, timeout=0.3).fetch(cid)


async def test_everywhere_404_is_not_found(hostile, make_fetcher, ipfs_node):
    _gateway, url = hostile
    missing = cids.raw_cid(b"never uploaded")
    with pytest.raises(ContentNotFound, match="not found on any gateway"):
        await make_fetcher(url, ipfs_node.url).fetch(missing)


class DroppingProxy:
    """A TCP proxy to the node that hangs up on the first `drop` connections as they arrive,
    as a server closing an idle keep-alive connection does while a request goes out."""

    def __init__(self, upstream_port: int, drop: int) -> None:
        self.upstream_port, self.drop, self.connections = upstream_port, drop, 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.connections <= self.drop:
            await reader.read(1)
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while chunk := await src.read(1 << 16):
                dst.write(chunk)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)


async def test_pinning_retries_a_dropped_connection(ipfs_node):
    proxy = DroppingProxy(int(ipfs_node.url.rsplit(":", 1)[1]), drop=2)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    data = os.urandom(3000)
    try:
        async with aiohttp.ClientSession() as session:
            pin = await PinataClient(session, ipfs_node.token, url).pin_file(data, "a")
        assert pin.cid == cids.raw_cid(data)
        assert proxy.connections == 3

        proxy.connections, proxy.drop = 0, 10
        async with aiohttp.ClientSession() as session:
            with pytest.raises(PinningError, match="failed after 2 attempts"):
                await PinataClient(session, ipfs_node.token, url, attempts=2).pin_file(data, "a")
        assert proxy.connections == 2
    finally:
        server.close()
        await server.wait_closed()
