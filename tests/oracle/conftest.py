"""A registry deployed on its own anvil per test module, with a freshly trained checkpoint as
its default model, and the local IPFS node: the parts every daemon suite runs on."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr
from pyrage import x25519
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.types import RPCEndpoint

from oracle.chain.deploy import deploy_on_devnet
from oracle.chain.registry import Registry
from oracle.crypto.keys import public_key
from oracle.dev.anvil import Anvil
from oracle.dev.ipfs import IpfsNode
from oracle.ipfs.pinata import PinataClient
from oracle.ml.card import ModelCard
from oracle.ml.cards import AnyCard
from oracle.settings import Settings, Tuning
from tests.oracle.daemon_support import Chain, Mode, Stack
from tests.support import free_port, tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelCard]:
    models = tmp_path_factory.mktemp("models")
    return models, tiny_checkpoint(tmp_path_factory.mktemp("synth"), models)


@pytest.fixture(scope="module")
def deployed_cards(checkpoint: tuple[Path, ModelCard]) -> list[AnyCard]:
    """The models the module's registry knows, the first its default (a module may add some)."""
    return [checkpoint[1]]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, deployed_cards: list[AnyCard]) -> Iterator[Chain]:
    work = tmp_path_factory.mktemp("chain")
    settings = Settings()
    oracle_key = x25519.Identity.generate()
    with Anvil("127.0.0.1", free_port(), settings.chain_id, work / "state.json", work / "anvil.log") as anvil:
        deployment = deploy_on_devnet(
            anvil.url, work / "deployment.json", deployed_cards, public_key(oracle_key)
        )
        yield Chain(anvil.url, deployment, oracle_key)


@pytest.fixture
async def stack(
    tmp_path: Path, chain: Chain, checkpoint: tuple[Path, ModelCard], ipfs_node: IpfsNode
) -> AsyncIterator[Stack]:
    settings = Settings(
        data_dir=tmp_path,
        rpc_urls=[chain.rpc],
        deployment=tmp_path / "deployment.json",
        gateways=[ipfs_node.url],
        ipfs_host=ipfs_node.host,
        ipfs_port=ipfs_node.port,
        ipfs_token=ipfs_node.token,
        model_dir=checkpoint[0],
        tuning=Tuning(
            confirmations=0, poll_interval=0.2, unreachable_grace=3.0, fetch_timeout=5, submit_wait=0.3
        ),
        device="cpu",
        metrics_port=0,
        oracle_age_key=SecretStr(str(chain.oracle_key)),
    )
    chain.deployment.save(settings.deployment_path)
    w3 = AsyncWeb3(AsyncHTTPProvider(chain.rpc))
    # Each test leaves the module's chain as it found it, so a test can run again (--count).
    snapshot = (await w3.provider.make_request(RPCEndpoint("evm_snapshot"), []))["result"]
    async with aiohttp.ClientSession() as session:
        yield Stack(
            settings,
            chain.deployment,
            w3,
            Registry(w3, chain.deployment),
            PinataClient(session, ipfs_node.token, ipfs_node.url),
            checkpoint[1],
        )
    reverted = await w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])
    await w3.provider.disconnect()
    assert reverted["result"] is True, reverted


@pytest.fixture(params=["embedded", "distributed"])
def mode(request: pytest.FixtureRequest) -> Mode:
    """Tests that take it run on both: the distributed mode's stores start only for its half."""
    if request.param == "embedded":
        return Mode("embedded")
    return Mode("distributed", request.getfixturevalue("stores"))
