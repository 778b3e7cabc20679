"""Clients for the real local IPFS node (tests/oracle/conftest.py)."""

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from oracle.dev.ipfs import REPO_ROOT, IpfsNode
from oracle.ipfs.fetch import GatewayFetcher
from oracle.ipfs.pinata import PinataClient
from tests.support import MAX_UPLOAD

SIZES = [0, 1, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 10 * 1024 * 1024]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def pinata(session: aiohttp.ClientSession, ipfs_node: IpfsNode) -> PinataClient:
    return PinataClient(session, ipfs_node.token, ipfs_node.url)


@pytest.fixture
def fetcher(session: aiohttp.ClientSession, ipfs_node: IpfsNode) -> GatewayFetcher:
    return GatewayFetcher(session, [ipfs_node.url], max_bytes=MAX_UPLOAD)


def page_cid(path: Path, cid_version: int) -> str:
    """The CID the page's importer (frontend/src/unixfs.mjs) computes for a file."""
    script = REPO_ROOT / "tools" / "cid.mjs"
    result = subprocess.run(
        ["node", str(script), "--cid-version", str(cid_version), str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
    )
    return result.stdout.strip()
