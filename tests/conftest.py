"""Suite-wide collection rules and the fixtures several suites share.

tests/fork runs only through its driver (python -m tests.fork.run), which starts an upstream devnet,
deploys with scripts/deploy.py and names the deployment file in HISTOCHAIN_FORK_DEPLOYMENT.
"""

import itertools
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from oracle.dev.datastores import Postgres, RedisServer
from oracle.dev.ipfs import IpfsNode
from tests.stores import Stores
from tests.support import free_port, make_node

collect_ignore_glob = [] if os.environ.get("HISTOCHAIN_FORK_DEPLOYMENT") else ["fork/*"]

# What `scripts/test --quick` leaves out (marked `stack`): the suites of whole systems, and every test
# that needs a chain, the IPFS node, the distributed stores or a browser, through these fixtures
# or a module mark (tests that start one themselves).
STACK_SUITES = {"e2e", "distributed", "contracts", "toolchain", "fork"}
STACK_FIXTURES = {
    *("chain", "stack", "ipfs_node", "page_stack", "browser"),
    *("postgres", "redis_server", "stores"),
}
# The CI-sized training run and the small set (ML suites): marked slow, and run in one xdist group.
SLOW_FIXTURES = {"synthetic", "small_synthetic", "ci_config", "trained"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks `stack` and `slow`, and groups the tests for `pytest -n N --dist loadgroup`: a file
    runs in one worker (its module fixtures are built once), and every file that uses the CI-sized
    training run shares one worker, so the model is trained once, not once per worker."""
    trained = set()
    for item in items:
        suite = item.path.relative_to(Path(__file__).parent).parts[0]
        fixtures = set(getattr(item, "fixturenames", ()))
        if suite in STACK_SUITES or fixtures & STACK_FIXTURES:
            item.add_marker(pytest.mark.stack)
        if fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
            trained.add(item.path)
    for item in items:
        group = "ci-trained-model" if item.path in trained else str(item.path)
        item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: item.path not in trained)  # the longest group starts first


@pytest.fixture(scope="session")
def node_token() -> str:
    return secrets.token_hex(16)


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory, node_token: str) -> Iterator[IpfsNode]:
    with make_node(tmp_path_factory.mktemp("ipfs"), node_token) as node:
        yield node


# The distributed mode's stores, real: one PostgreSQL cluster and one redis-server per session
# (Debian's packages, in temp folders on free ports), started only for the tests that ask; a fresh
# database and an empty Redis per test.
_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    # The server runs as the `postgres` user when the tests run as root: its folder must not
    # sit under pytest's root-only temp folder.
    folder = Path(tempfile.mkdtemp(prefix="histochain-pg-"))
    folder.chmod(0o755)
    server = Postgres(folder / "cluster", free_port(), tmp_path_factory.mktemp("logs") / "postgres.log")
    try:
        with server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    folder = tmp_path_factory.mktemp("redis")
    with RedisServer(folder, free_port(), folder / "redis.log") as server:
        yield server


@pytest.fixture
async def stores(postgres: Postgres, redis_server: RedisServer) -> Stores:
    await redis_server.flush()
    return Stores(await postgres.create_database(f"test_{next(_databases)}"), redis_server.url)
