"""On ethereum:devnet-fork:foundry: find the registry scripts/deploy.py put on the upstream devnet,
check what the deployment file says, and exercise it as patient, oracle and admin."""

import os
from pathlib import Path

import ape
import pytest

from oracle.chain.deployment import Deployment
from oracle.chain.registry import image_id_for
from oracle.ipfs.cid import raw_cid
from oracle.ml.card import ModelCard

PENDING, CLASSIFIED, FAILED, CANCELLED = 1, 2, 3, 4


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return Deployment.load(Path(os.environ["HISTOCHAIN_FORK_DEPLOYMENT"]))


@pytest.fixture(scope="module")
def registry(project, deployment):
    return project.ImageRegistry.at(deployment.address)


def test_fork_is_of_the_devnet_and_holds_the_deployment(chain, deployment, registry):
    assert chain.provider.network.name == "devnet-fork"
    assert chain.chain_id == deployment.chain_id == 313370
    assert chain.blocks.height >= deployment.block
    receipt = chain.provider.get_receipt(deployment.transaction)
    assert receipt.contract_address == deployment.address
    assert chain.provider.get_code(deployment.address)


def test_deployment_file_matches_the_chain(registry, deployment, project):
    card = ModelCard.load(Path(os.environ["HISTOCHAIN_FORK_CARD"]))
    (model,) = deployment.models
    assert model.model_id == "0x" + card.model_id.hex()
    assert registry.getModel(card.model_id) == (1, True)
    assert registry.defaultModel() == card.model_id
    assert (model.fee, model.failure_fee) == (3 * 10**15, 10**15 // 2)  # tests/fork/run.py's --model-fee
    assert registry.modelFee(card.model_id) == (model.fee, model.failure_fee)
    assert registry.requestTimeout() == deployment.request_timeout
    assert registry.hasRole(registry.DEFAULT_ADMIN_ROLE(), deployment.deployer)
    for oracle in deployment.oracles:
        assert registry.hasRole(registry.ORACLE_ROLE(), oracle)
    abi_names = {item.get("name") for item in deployment.abi}
    compiled = {item.name for item in project.ImageRegistry.contract_type.abi if hasattr(item, "name")}
    assert abi_names - {None} == compiled


def test_register_post_fail_cancel_on_the_fork(registry, deployment, accounts, chain):
    oracle = next(a for a in accounts if a.address == deployment.oracles[0])
    patient = accounts[5]
    (model,) = deployment.models
    ids = []
    for _ in range(3):
        cid = raw_cid(os.urandom(32))
        tx = registry.registerImage(cid, b"\x00" * 32, sender=patient, value=model.fee)
        assert tx.events[0].cid == cid
        ids.append(bytes.fromhex(image_id_for(patient.address, cid)[2:]))
    posted, failed, cancelled = ids

    assert registry.postResults.call([posted, posted], [b"\x01" * 32] * 2, sender=oracle) == 1
    registry.postResults([posted], [b"\x01" * 32], sender=oracle)
    tx = registry.reportFailure(failed, 2, sender=oracle)
    refund = model.fee - model.failure_fee
    assert registry.Refunded(imageId=failed, owner=patient, amount=refund) in tx.events
    with ape.reverts(registry.AccessControlUnauthorizedAccount):
        registry.postResult(cancelled, b"\x01" * 32, sender=patient)
    chain.pending_timestamp += deployment.request_timeout
    registry.cancel(cancelled, sender=patient)
    assert [registry.statusOf(i) for i in ids] == [CLASSIFIED, FAILED, CANCELLED]
