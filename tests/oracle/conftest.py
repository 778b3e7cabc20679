"""Fixtures shared by the oracle suites: a real local IPFS node."""

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from oracle.dev.ipfs import IpfsNode
from tests.support import free_port

MAX_UPLOAD = 12 << 20


@pytest.fixture(scope="session")
def node_token() -> str:
    return secrets.token_hex(16)


def make_node(data_dir: Path, token: str, port: int | None = None) -> IpfsNode:
    return IpfsNode("127.0.0.1", port or free_port(), data_dir, token, data_dir / "node.log", MAX_UPLOAD)


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory, node_token: str) -> Iterator[IpfsNode]:
    with make_node(tmp_path_factory.mktemp("ipfs"), node_token) as node:
        yield node
