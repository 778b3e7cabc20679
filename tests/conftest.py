"""Suite-wide collection rules and the fixtures several suites share.

tests/fork runs only through its driver (python -m tests.fork.run), which starts an upstream devnet,
deploys with scripts/deploy.py and names the deployment file in HISTOCHAIN_FORK_DEPLOYMENT.
"""

import os
import secrets
from collections.abc import Iterator

import pytest

from oracle.dev.ipfs import IpfsNode
from tests.support import make_node

collect_ignore_glob = [] if os.environ.get("HISTOCHAIN_FORK_DEPLOYMENT") else ["fork/*"]


@pytest.fixture(scope="session")
def node_token() -> str:
    return secrets.token_hex(16)


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory, node_token: str) -> Iterator[IpfsNode]:
    with make_node(tmp_path_factory.mktemp("ipfs"), node_token) as node:
        yield node
