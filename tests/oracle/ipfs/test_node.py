"""The node's HTTP faces: auth, limits, errors, CORS, content types, persistence."""

import asyncio
import contextlib
import os
import random
import secrets
import subprocess
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from oracle.dev.ipfs import IpfsNode
from oracle.dev.process import free_port
from oracle.ipfs.errors import ContentNotFound, PinningError
from oracle.ipfs.fetch import GatewayFetcher
from oracle.ipfs.pinata import PinataClient
from tests.support import MAX_UPLOAD, make_node

pytestmark = pytest.mark.stack  # the real node, started by its fixtures or the tests themselves


async def test_upload_needs_the_token(session: aiohttp.ClientSession, ipfs_node: IpfsNode):
    wrong = PinataClient(session, "not-the-token", ipfs_node.url)
    with pytest.raises(PinningError, match="HTTP 401"):
        await wrong.pin_file(b"x", "x.bin")


async def test_upload_over_the_limit_is_refused(pinata: PinataClient):
    with pytest.raises(PinningError, match="HTTP 413"):
        await pinata.pin_file(os.urandom(MAX_UPLOAD + 1), "big.bin")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/ipfs/not-a-cid", 400),
        ("/ipfs/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", 404),
        ("/ipfs/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku?format=car", 404),
        ("/ipfs/bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua", 400),
        ("/nowhere", 404),
    ],
)
async def test_gateway_errors(session: aiohttp.ClientSession, ipfs_node: IpfsNode, path: str, status: int):
    async with session.get(ipfs_node.url + path) as response:
        assert response.status == status
        assert "error" in await response.json()


async def test_cors_preflight_for_the_page(session: aiohttp.ClientSession, ipfs_node: IpfsNode):
    headers = {"Origin": "http://localhost:8000", "Access-Control-Request-Method": "POST"}
    async with session.options(ipfs_node.url + "/pinning/pinFileToIPFS", headers=headers) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


async def test_file_is_served_with_its_content_type(
    session: aiohttp.ClientSession, ipfs_node: IpfsNode, pinata: PinataClient, tmp_path: Path
):
    Image.new("RGB", (700, 460), (230, 170, 200)).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    pin = await pinata.pin_file(data, "a.png", 1)
    async with session.get(f"{ipfs_node.url}/ipfs/{pin.cid}") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert await response.read() == data
    async with session.get(f"{ipfs_node.url}/ipfs/{pin.cid}?format=raw") as response:
        assert response.headers["Content-Type"] == "application/vnd.ipld.raw"


async def test_restarting_the_node_keeps_its_content(session: aiohttp.ClientSession, tmp_path: Path):
    token = secrets.token_hex(8)
    data = os.urandom(400_000)
    with make_node(tmp_path, token) as node:
        cid = (await PinataClient(session, token, node.url).pin_file(data, "a.bin", 1)).cid
        port = node.port
    with make_node(tmp_path, token, port) as node:
        fetched = await GatewayFetcher(session, [node.url], max_bytes=1 << 20).fetch(cid)
        assert fetched.data == data
    with make_node(tmp_path / "elsewhere", token, port) as node, pytest.raises(ContentNotFound):
        await GatewayFetcher(session, [node.url], max_bytes=1 << 20).fetch(cid, attempts=1)


RSS_BOUND_MIB = 300  # the node's resident memory under hostile requests (README states it)


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> tuple[bytes, str]:
    out = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def raw_request(node: IpfsNode, head: bytes, body: bytes, close_after: int | None = None) -> bytes:
    """A request over a plain socket: `close_after` bytes of the body are sent, then the socket is
    closed (a client that dies mid-upload); otherwise the whole body, and the answer is read."""
    reader, writer = await asyncio.open_connection(node.host, node.port)
    try:
        writer.write(head + (body if close_after is None else body[:close_after]))
        await writer.drain()
        if close_after is not None:
            return b""
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def upload_head(node: IpfsNode, content_type: str, length: int, token: str | None = None) -> bytes:
    return (
        f"POST /pinning/pinFileToIPFS HTTP/1.1\r\nHost: {node.host}:{node.port}\r\n"
        f"Authorization: Bearer {token or node.token}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


async def healthy(session: aiohttp.ClientSession, node: IpfsNode) -> bool:
    async with session.get(node.url + "/health") as response:
        return response.status == 200


async def test_a_truncated_upload_leaves_the_node_up(session: aiohttp.ClientSession, ipfs_node: IpfsNode):
    """The crash: a multipart body cut off mid-file errored the file stream with no listener."""
    body, content_type = multipart([("file", "x.bin", os.urandom(200_000))])
    for cut in (10, len(body) // 2, len(body) - 5):
        await raw_request(ipfs_node, upload_head(ipfs_node, content_type, len(body)), body, close_after=cut)
        assert await healthy(session, ipfs_node)
    answer = await raw_request(ipfs_node, upload_head(ipfs_node, content_type, len(body)), body)
    assert answer.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("options", ["null", "[]", "3", '"text"', "{", '{"cidVersion": 7}'])
async def test_malformed_pinata_options_are_a_clean_400(
    pinata: PinataClient, ipfs_node: IpfsNode, options: str
):
    form = aiohttp.FormData()
    form.add_field("file", b"hello", filename="h.bin")
    form.add_field("pinataOptions", options)
    headers = {"Authorization": f"Bearer {ipfs_node.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{ipfs_node.url}/pinning/pinFileToIPFS", data=form, headers=headers) as response,
    ):
        assert response.status == 400
        body = await response.json()
    assert body["error"].startswith("pinataOptions")
    assert "TypeError" not in body["error"]
    assert "Cannot read" not in body["error"]


async def test_every_answer_says_nosniff(
    session: aiohttp.ClientSession, pinata: PinataClient, ipfs_node: IpfsNode
):
    cid = (await pinata.pin_file(b"<html><script>alert(1)</script></html>", "page.html", 1)).cid
    for path in (f"/ipfs/{cid}", "/ipfs/not-a-cid", "/nowhere", "/health"):
        async with session.get(ipfs_node.url + path) as response:
            assert response.headers["X-Content-Type-Options"] == "nosniff", path
    async with session.get(f"{ipfs_node.url}/ipfs/{cid}") as response:
        assert response.headers["Content-Type"] == "application/octet-stream"


async def test_a_file_declaring_more_than_the_node_serves_is_refused_before_it_is_read(
    session: aiohttp.ClientSession, tmp_path: Path
):
    """A 320 kB DAG that links one 256 KiB leaf 1,024 times declares 256 MiB: the file is refused
    at once, and its CAR carries each block once."""
    store = tmp_path / "ipfs"
    script = Path(__file__).with_name("hostile-blocks.mjs")
    done = subprocess.run(
        ["node", str(script), str(store), "1024"], capture_output=True, text=True, check=True
    )
    root = done.stdout.strip()
    with make_node(store, secrets.token_hex(8)) as node:
        async with session.get(f"{node.url}/ipfs/{root}") as response:
            assert response.status == 413
            assert "declares 268435456 bytes" in (await response.json())["error"]
        async with session.get(f"{node.url}/ipfs/{root}?format=car") as response:
            assert response.status == 200
            car = await response.read()
        blocks = sum(f.stat().st_size for f in store.rglob("*.data"))
        assert blocks < len(car) < blocks + 1000  # the leaf once and the root: 311 kB, not 256 MiB
        assert node.pid is not None
        assert rss_mib(node.pid) < RSS_BOUND_MIB


async def test_multipart_fuzzing_never_stops_the_node_and_its_memory_stays_bounded(
    session: aiohttp.ClientSession, ipfs_node: IpfsNode
):
    rng = random.Random(15)
    good, content_type = multipart(
        [("file", "f.bin", os.urandom(64_000)), ("pinataOptions", None, b'{"cidVersion":1}')]
    )
    assert ipfs_node.pid is not None
    for _ in range(20):
        batch = []
        for _ in range(10):
            body, kind = (
                bytearray(good),
                rng.choice(["flip", "cut", "insert", "boundary", "headers", "close"]),
            )
            if kind == "flip":
                for _ in range(rng.randint(1, 20)):
                    body[rng.randrange(len(body))] ^= rng.randrange(1, 256)
            elif kind == "cut":
                del body[rng.randrange(len(body)) :]
            elif kind == "insert":
                at = rng.randrange(len(body))
                body[at:at] = rng.choice([b"\r\n", b"--b0undary\r\n", b"\x00" * 1000, b'name="file"'])
            elif kind == "boundary":
                body = bytearray(body.replace(b"b0undary", b"other", rng.randint(1, 2)))
            declared = len(body) + (rng.choice([0, 0, 100, -100]) if kind != "close" else 0)
            kind_type = (
                content_type if kind != "headers" else rng.choice(["text/plain", "multipart/form-data", ""])
            )
            head = upload_head(ipfs_node, kind_type, max(0, declared))
            close_after = rng.randrange(len(body)) if kind == "close" or declared > len(body) else None
            batch.append(raw_request(ipfs_node, head, bytes(body), close_after))
        answers = await asyncio.gather(*batch, return_exceptions=True)
        assert not [
            a
            for a in answers
            if isinstance(a, Exception) and not isinstance(a, (ConnectionError, TimeoutError))
        ]
        assert await healthy(session, ipfs_node)
    assert rss_mib(ipfs_node.pid) < RSS_BOUND_MIB


async def settled_rss_mib(pid: int, timeout: float = 30.0) -> float:
    """The node's peak resident memory once it has grown by under 1 MiB for a second (or at `timeout`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    peak, calm = rss_mib(pid), 0
    while calm < 10 and loop.time() < deadline:
        await asyncio.sleep(0.1)
        now = rss_mib(pid)
        calm = calm + 1 if now < peak + 1 else 0
        peak = max(peak, now)
    return peak


async def test_clients_that_never_read_do_not_make_the_node_buffer_the_file(
    session: aiohttp.ClientSession, tmp_path: Path
):
    """The exporter read a whole file ahead of a client that never read: 20 such clients of a 32 MB
    file added ~580 MiB to the node. Each may now hold one read window and a chunk, no more."""
    token, data = secrets.token_hex(8), os.urandom(32_000_000)
    with IpfsNode("127.0.0.1", free_port(), tmp_path, token, tmp_path / "node.log") as node:
        cid = (await PinataClient(session, token, node.url).pin_file(data, "big.bin", 1)).cid
        assert node.pid is not None
        baseline = await settled_rss_mib(node.pid)
        clients = [await asyncio.open_connection(node.host, node.port) for _ in range(20)]
        try:
            for reader, writer in clients:
                writer.write(f"GET /ipfs/{cid} HTTP/1.1\r\nHost: {node.host}\r\n\r\n".encode())
                await writer.drain()
                assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            peak = await settled_rss_mib(node.pid)
        finally:
            for _, writer in clients:
                writer.transport.abort()
        assert peak < baseline + 100, (baseline, peak)
        assert peak < RSS_BOUND_MIB
        fetched = await GatewayFetcher(session, [node.url], max_bytes=len(data)).fetch(cid)
        assert fetched.data == data


async def unfinished_upload(
    node: IpfsNode, token: str, sent: int, size: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An upload of `size` bytes that stops after `sent` of them and waits."""
    boundary = "histochain-test"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    reader, writer = await asyncio.open_connection(node.host, node.port)
    writer.write(
        (
            f"POST /pinning/pinFileToIPFS HTTP/1.1\r\nHost: {node.host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(head) + size + len(tail)}\r\n\r\n"
        ).encode()
        + head
        + os.urandom(sent)
    )
    await writer.drain()
    return reader, writer


async def test_unfinished_uploads_hold_a_bounded_number_of_bytes_and_a_dead_one_none(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """40 unfinished 8 MiB uploads raised the node from 124 to 421 MiB, still 421 once they had
    closed. Together they now hold at most --max-in-flight-bytes (past it an upload gets 503), and
    a connection that dies gives its bytes back at once."""
    token, mib = secrets.token_hex(8), 1 << 20
    with IpfsNode("127.0.0.1", free_port(), tmp_path, token, tmp_path / "node.log", mib, 2 * mib) as node:
        uploads = [await unfinished_upload(node, token, 900_000, mib) for _ in range(3)]
        try:
            done, waiting = await asyncio.wait(
                [asyncio.create_task(reader.readuntil(b"\r\n\r\n")) for reader, _ in uploads],
                timeout=30,
                return_when=asyncio.FIRST_COMPLETED,
            )
            assert len(done) == 1, "the upload that crossed the bound is answered; the others wait"
            assert done.pop().result().startswith(b"HTTP/1.1 503")
            for task in waiting:
                task.cancel()
        finally:
            for _, writer in uploads:
                writer.transport.abort()
        data = os.urandom(mib - 1000)
        deadline = asyncio.get_running_loop().time() + 30
        while True:  # until the node has seen the connections die (it answers 503 until then)
            try:
                pin = await PinataClient(session, token, node.url).pin_file(data, "after.bin", 1)
                break
            except PinningError:
                assert asyncio.get_running_loop().time() < deadline, "the dead uploads' bytes were kept"
        fetched = await GatewayFetcher(session, [node.url], max_bytes=len(data)).fetch(pin.cid)
        assert fetched.data == data
