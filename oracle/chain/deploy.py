"""Deploy the ImageRegistry with Ape, grant oracle roles, register models with their fees, record
the deployment."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import HTTPProvider, Web3
from web3.exceptions import Web3Exception

from oracle import REPO_ROOT
from oracle.chain.deployment import DeployedModel, Deployment, DeploymentError
from oracle.errors import HistochainError
from oracle.ipfs.cid import raw_cid
from oracle.jcs import canonical
from oracle.ml.cards import AnyCard

DEV_REQUEST_TIMEOUT = 3600
ENCRYPTION_KEYS = keccak(b"encryptionKeys()")[:4]  # the view only a registry with the envelope has

Terms = tuple[int, int]
"""A model's fee and what a failure keeps of it, in wei."""


class DeployError(HistochainError):
    """The deployment could not be completed as asked."""


def card_uri(card: AnyCard) -> str:
    """The card's content address: the raw CID of its canonical JSON, servable by any IPFS node."""
    return "ipfs://" + raw_cid(canonical(card.model_dump(mode="json")))


def deploy_registry(
    project: Any,
    chain: Any,
    sender: Any,
    *,
    oracles: Sequence[str],
    request_timeout: int,
    cards: Sequence[AnyCard],
    default_model: str | None,
    terms: Terms = (0, 0),
    model_terms: Mapping[str, Terms] | None = None,
) -> Deployment:
    """`project`, `chain` and `sender` are Ape's; the caller chooses the network. Each model is
    registered at `model_terms[its name]`, else at `terms`."""
    names = [card.name for card in cards]
    if len(set(names)) != len(names):
        raise DeployError(f"model names must be unique, got {names}")
    if default_model is None and cards:
        default_model = cards[0].name
    if default_model is not None and default_model not in names:
        raise DeployError(f"default model {default_model!r} is not among the cards {names}")
    model_terms = dict(model_terms or {})
    if unknown := set(model_terms) - set(names):
        raise DeployError(f"fees for models that are not among the cards: {sorted(unknown)}")
    for name, (fee, failure_fee) in {"every model": terms, **model_terms}.items():
        if failure_fee > fee:
            raise DeployError(f"{name}: the failure fee ({failure_fee} wei) exceeds the fee ({fee} wei)")

    registry = project.ImageRegistry.deploy(sender.address, request_timeout, sender=sender)
    receipt = registry.creation_metadata.receipt
    oracle_role = registry.ORACLE_ROLE()
    for oracle in oracles:
        registry.grantRole(oracle_role, oracle, sender=sender)
    models = []
    for card in cards:
        uri = card_uri(card)
        fee, failure_fee = model_terms.get(card.name, terms)
        registry.registerModel(card.model_id, card.name, uri, fee, failure_fee, sender=sender)
        models.append(deployed(card, uri, (fee, failure_fee)))
    default_id = next((m.model_id for m in models if m.name == default_model), None)
    if default_id is not None:
        registry.setDefaultModel(default_id, sender=sender)

    return Deployment(
        chain_id=chain.chain_id,
        address=to_checksum_address(registry.address),
        block=receipt.block_number,
        transaction=receipt.txn_hash if isinstance(receipt.txn_hash, str) else receipt.txn_hash.hex(),
        deployer=to_checksum_address(sender.address),
        oracles=tuple(to_checksum_address(o) for o in oracles),
        request_timeout=request_timeout,
        models=tuple(models),
        default_model=default_id,
        abi=[abi.model_dump(mode="json", by_alias=True) for abi in registry.contract_type.abi],
    )


def deploy_on_devnet(
    rpc_url: str,
    out: Path,
    cards: Sequence[AnyCard] = (),
    oracle_key: bytes | None = None,
    terms: Terms = (0, 0),
    model_terms: Mapping[str, Terms] | None = None,
) -> Deployment:
    """Deploy on the dev chain at `rpc_url` with anvil's well-known test accounts: 0 deploys and
    administers, 1 is the oracle and publishes `oracle_key` (its X25519 public key), if given.
    Fees as `deploy_registry`'s. Writes the deployment file to `out`."""
    from ape import accounts, chain, networks, project
    from ape.logging import logger

    logger.set_level("WARNING")
    out = out.resolve()
    with (
        project.chdir(REPO_ROOT),
        networks.parse_network_choice(
            "ethereum:devnet:node", provider_settings={"uri": rpc_url}, disconnect_after=True
        ),
    ):
        deployer, oracle = accounts.test_accounts[0], accounts.test_accounts[1]
        deployment = deploy_registry(
            project,
            chain,
            deployer,
            oracles=[oracle.address],
            request_timeout=DEV_REQUEST_TIMEOUT,
            cards=cards,
            default_model=None,
            terms=terms,
            model_terms=model_terms,
        )
        if oracle_key is not None:
            project.ImageRegistry.at(deployment.address).setEncryptionKey(oracle_key, sender=oracle)
    deployment.save(out)
    return deployment


def transact(rpc_url: str, deployment: Deployment, signer: LocalAccount, function: str, *args: Any) -> str:
    """The registry's `function(*args)` signed by `signer`; the transaction's hash once mined."""
    w3 = Web3(HTTPProvider(rpc_url))
    registry = w3.eth.contract(address=deployment.address, abi=deployment.abi)
    call: Any = getattr(registry.functions, function)(*args)
    tx = call.build_transaction(
        {"from": signer.address, "nonce": w3.eth.get_transaction_count(signer.address, "pending")}
    )
    sent = w3.eth.send_raw_transaction(signer.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(sent, timeout=120)
    if receipt["status"] != 1:
        raise DeployError(f"{function} reverted in transaction {sent.hex()}")
    return "0x" + bytes(sent).hex()


def publish_encryption_key(rpc_url: str, deployment: Deployment, signer: LocalAccount, key: bytes) -> str:
    """`setEncryptionKey(key)` signed by the oracle itself; the transaction's hash once mined."""
    from oracle.crypto.keys import check_public_key

    check_public_key(key)  # a key no one can seal to would only make patients' pages skip it
    return transact(rpc_url, deployment, signer, "setEncryptionKey", key)


def deployed(card: AnyCard, uri: str, terms: Terms) -> DeployedModel:
    return DeployedModel(
        name=card.name,
        model_id="0x" + card.model_id.hex(),
        metadata_uri=uri,
        fee=terms[0],
        failure_fee=terms[1],
    )


def register_model(
    rpc_url: str, deployment: Deployment, admin: LocalAccount, card: AnyCard, terms: Terms = (0, 0)
) -> Deployment:
    """`registerModel` at `terms` for a card trained after the deployment (the dev stack's
    super-resolution model), signed by an admin; the deployment with the model added (the caller
    saves it)."""
    uri = card_uri(card)
    transact(rpc_url, deployment, admin, "registerModel", card.model_id, card.name, uri, *terms)
    return deployment.model_copy(update={"models": (*deployment.models, deployed(card, uri, terms))})


def published_key(rpc_url: str, deployment: Deployment, oracle: str) -> bytes | None:
    """The encryption key the registry holds for `oracle`, if any."""
    registry = Web3(HTTPProvider(rpc_url)).eth.contract(address=deployment.address, abi=deployment.abi)
    oracles, keys = registry.functions.encryptionKeys().call()
    return next((bytes(k) for o, k in zip(oracles, keys, strict=True) if o == oracle), None)


def deployment_on_chain(path: Path, rpc_url: str) -> Deployment | None:
    """The saved deployment if the chain at `rpc_url` still holds it (same chain id, code at the
    address) and it speaks this interface (its `encryptionKeys()` answers), else None: a fresh
    chain, or a registry from before the envelope or per-model fees (its file no longer reads),
    needs a fresh deployment."""
    if not path.exists():
        return None
    try:
        deployment = Deployment.load(path)
    except DeploymentError:
        return None
    w3 = Web3(HTTPProvider(rpc_url))
    if w3.eth.chain_id != deployment.chain_id or not w3.eth.get_code(deployment.address):
        return None
    if not {"encryptionKeys", "modelFee"} <= {item.get("name") for item in deployment.abi}:
        return None
    try:
        answer = w3.eth.call({"to": deployment.address, "data": ENCRYPTION_KEYS})
    except (Web3Exception, ValueError):
        return None
    return deployment if len(answer) >= 128 else None  # two offsets, two lengths: (address[], bytes32[])
