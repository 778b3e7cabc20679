"""The node's HTTP faces: auth, limits, errors, CORS, content types, persistence."""

import os
import secrets
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from oracle.dev.ipfs import IpfsNode
from oracle.ipfs.errors import ContentNotFound, PinningError
from oracle.ipfs.fetch import GatewayFetcher
from oracle.ipfs.pinata import PinataClient
from tests.support import MAX_UPLOAD, make_node


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
