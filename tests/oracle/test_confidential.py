"""Confidential images on real parts (anvil, the local IPFS node, the daemon, the query API): what
the gateway serves is ciphertext, a squatter who copies a patient's CID gets nothing of theirs,
every envelope the oracle cannot accept ends in its own on-chain reason, and the plaintext never
reaches a disk, a log or the database."""

import asyncio
import hashlib
import io
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError
from pydantic import SecretStr
from pyrage import x25519

from oracle.api.app import ApiConfig, create_app
from oracle.api.auth import AuthConfig
from oracle.chain.anvil_accounts import dev_account
from oracle.chain.reasons import FailureReason
from oracle.chain.registry import Status, hex32
from oracle.crypto.envelope import Binding, EnvelopeError, open_envelope, seal, seal_image
from oracle.crypto.keys import oracle_identity, recipient_of_key
from oracle.daemon.app import run_daemon
from oracle.dev.anvil import dev_patient_identity
from oracle.dev.ipfs import IpfsNode
from oracle.document import verify
from oracle.errors import ConfigError
from oracle.ipfs.cid import normalise
from oracle.settings import Settings
from oracle.store.db import Database
from tests.oracle.api.client import get, sign_in
from tests.oracle.daemon_support import (
    DaemonProcess,
    Stack,
    envelope,
    register,
    send_registration,
    until_jobs_settled,
    until_settled,
    upload,
)
from tests.support import free_port, png, serve

FEE = 10**15
FAILURE_FEE = 4 * 10**14
PATIENT, SQUATTER = 2, 6


async def gateway_bytes(ipfs: IpfsNode, cid: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(f"{ipfs.url}/ipfs/{cid}") as response:
        assert response.status == 200
        return await response.read()


def windows(data: bytes, size: int = 64) -> set[bytes]:
    return {data[i : i + size] for i in range(len(data) - size + 1)}


def contents(path: Path) -> bytes:
    """A file's bytes; nothing for one that vanished since it was listed (SQLite's -shm file goes
    when the last connection closes, its pages already checkpointed into the database file)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


async def failure_reasons(stack: Stack) -> dict[str, FailureReason]:
    failed = await stack.registry.contract.events.ClassificationFailed.get_logs(
        from_block=stack.deployment.block
    )
    return {hex32(e["args"]["imageId"]): FailureReason(e["args"]["reason"]) for e in failed}


async def settled_document(
    stack: Stack, settings: Settings, registration: Callable[[], Awaitable[str]]
) -> tuple[str, dict[str, Any]]:
    """The daemon run until the image `registration` registers is settled: its id and the
    document the oracle stored for it."""
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(settings, stop))
    try:
        image_id = await registration()
        await until_settled(stack, [image_id])
        await until_jobs_settled([settings], [image_id])
    finally:
        stop.set()
        await daemon
    with sqlite3.connect(settings.data_dir / "oracle.db") as db:
        ((document,),) = db.execute("SELECT document FROM jobs WHERE image_id = ?", (image_id,))
    return image_id, json.loads(document)


async def transact(stack: Stack, account_index: int, call: Any, value: int = 0) -> Any:
    account = dev_account(account_index)
    nonce = await stack.w3.eth.get_transaction_count(account.address, "pending")
    tx = await call.build_transaction({"from": account.address, "nonce": nonce, "value": value})
    sent = await stack.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = await stack.w3.eth.wait_for_transaction_receipt(sent)
    assert receipt["status"] == 1
    return receipt


async def test_what_the_gateway_serves_for_a_registered_cid_is_ciphertext(
    stack: Stack, ipfs_node: IpfsNode
) -> None:
    image = png(np.random.default_rng(51), malignant=True)
    sealed = await envelope(stack, image, PATIENT)
    cid = await upload(stack, sealed)
    served = await gateway_bytes(ipfs_node, cid)
    assert served == sealed
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(served))
    assert not windows(image) & windows(served), "a 64-byte window of the image is readable on IPFS"
    stranger = x25519.Identity.generate()
    with pytest.raises(Exception, match="not encrypted to this oracle's key"):
        open_envelope(served, [stranger])
    patient_key = dev_patient_identity(PATIENT, stack.deployment.chain_id, stack.deployment.address)
    assert open_envelope(served, [patient_key]).image == image  # the patient can always read their own


async def test_a_squatter_who_registers_a_patients_cid_first_gets_nothing_of_theirs(stack: Stack) -> None:
    """The front-run: the squatter sees the patient's CID and registers it first, paying the fee.
    The squatter's record is the squatter's own; the oracle refuses it as bound to another owner
    and refunds the fee less the failure fee; the patient's registration succeeds and is
    classified; the squatter can read neither the image nor the patient's result."""
    contract = stack.registry.contract
    assert stack.deployment.default_model is not None
    await transact(stack, 0, contract.functions.setModelFee(stack.deployment.default_model, FEE, FAILURE_FEE))
    earned = await contract.functions.earnedFees().call()
    image = png(np.random.default_rng(53), malignant=False)
    cid = await upload(stack, await envelope(stack, image, PATIENT))
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(stack.settings, stop))
    try:
        squatted = await send_registration(stack, cid, SQUATTER, fee=FEE)
        own = await send_registration(stack, cid, PATIENT, fee=FEE)
        assert squatted != own
        statuses = await until_settled(stack, [squatted, own])
        await until_jobs_settled([stack.settings], [squatted, own])
    finally:
        stop.set()
        await daemon
    assert statuses == {squatted: Status.FAILED, own: Status.CLASSIFIED}
    assert (await failure_reasons(stack))[squatted] == FailureReason.WRONG_BINDING
    refunds = await contract.events.Refunded.get_logs(from_block=stack.deployment.block)
    assert [(hex32(e["args"]["imageId"]), e["args"]["owner"], e["args"]["amount"]) for e in refunds] == [
        (squatted, dev_account(SQUATTER).address, FEE - FAILURE_FEE)
    ]
    assert await contract.functions.earnedFees().call() - earned == FAILURE_FEE + FEE  # kept + the patient's

    auth = AuthConfig(
        "localhost:8000", "http://localhost:8000", stack.deployment.chain_id, stack.deployment.address
    )
    db = Database(stack.settings.database)
    runner, api = await serve(create_app(db, ApiConfig(), auth))
    try:
        squatter = await sign_in(api, dev_account(SQUATTER))
        patient = await sign_in(api, dev_account(PATIENT))
        status, body = await get(f"{api}/v1/images/{own}/document", squatter)
        assert (status, body["error"]["code"]) == (403, "forbidden")
        status, body = await get(f"{api}/v1/images/{cid}", squatter)  # their CID: their own failed record
        assert (status, body["image_id"], body["failure_reason"], body["document"]) == (
            200,
            squatted,
            "wrong_binding",
            None,
        )
        status, body = await get(f"{api}/v1/images/{cid}/document", patient)
        assert status == 200
        on_chain = (await stack.registry.image(own)).result_hash
        assert verify(body["document"], bytes.fromhex(on_chain[2:]))
        assert body["document"]["content_sha256"] == hashlib.sha256(image).hexdigest()
    finally:
        await runner.cleanup()
        await db.close()


async def test_envelopes_the_oracle_cannot_accept_end_in_their_reasons_and_it_stays_up(stack: Stack) -> None:
    rng = np.random.default_rng(57)
    deployment = stack.deployment
    owner = dev_account(PATIENT).address
    recipients = await stack.registry.recipients()
    image = png(rng, malignant=True)

    def bound(**changes: Any) -> bytes:
        binding = Binding.of(owner, deployment.chain_id, deployment.address, "image/png", len(image))
        return seal(image, binding.model_copy(update=changes), recipients)

    honest = seal_image(image, owner, deployment.chain_id, deployment.address, recipients)
    square = io.BytesIO()
    Image.new("RGB", (300, 300), (0, 0, 255)).save(square, format="PNG")
    blue_square = square.getvalue()
    cases = {
        "to an unknown key": (
            seal_image(
                image,
                owner,
                deployment.chain_id,
                deployment.address,
                [str(x25519.Identity.generate().to_public())],
            ),
            FailureReason.NOT_DECRYPTABLE,
        ),
        "tampered": (
            honest[:-30] + bytes([honest[-30] ^ 0x40]) + honest[-29:],
            FailureReason.NOT_DECRYPTABLE,
        ),
        "plaintext": (image, FailureReason.NOT_DECRYPTABLE),
        "bound to another chain": (bound(chain_id=1), FailureReason.WRONG_BINDING),
        "bound to another registry": (
            bound(registry=dev_account(9).address.lower()),
            FailureReason.WRONG_BINDING,
        ),
        "bound to another owner": (bound(owner=dev_account(3).address.lower()), FailureReason.WRONG_BINDING),
        "a reply_to key no one can seal to": (  # age would panic sealing a heat map to it
            bound(reply_to=recipient_of_key(b"\x01" + bytes(31))),
            FailureReason.NOT_DECRYPTABLE,
        ),
        "no image inside": (
            seal(
                os.urandom(3000),
                Binding.of(owner, deployment.chain_id, deployment.address, "image/png", 3000),
                recipients,
            ),
            FailureReason.UNSUPPORTED_IMAGE,
        ),
        "a blue square, not tissue": (
            seal_image(blue_square, owner, deployment.chain_id, deployment.address, recipients),
            FailureReason.NOT_TISSUE,
        ),
    }
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(stack.settings, stop))
    try:
        expected = {}
        for data, reason in cases.values():
            expected[await send_registration(stack, await upload(stack, data), PATIENT)] = reason
        after = await register(stack, png(rng, malignant=False), PATIENT)
        await until_settled(stack, [*expected, after])
        assert not daemon.done()
    finally:
        stop.set()
        await daemon
    reasons = await failure_reasons(stack)
    assert {why: reasons.get(i) for why, i in zip(cases, expected, strict=True)} == {
        why: reason for why, (_, reason) in cases.items()
    }
    assert await stack.registry.status(after) == Status.CLASSIFIED
    blue = dict(zip(cases, expected, strict=True))["a blue square, not tissue"]
    with sqlite3.connect(stack.settings.data_dir / "oracle.db") as db:
        ((error,),) = db.execute("SELECT error FROM jobs WHERE image_id = ?", (blue,))
    assert error.startswith("not tissue (flat): 16 colours make up 100% of the image")


async def test_an_oracle_key_no_one_can_seal_to_is_left_out_and_patients_go_on(stack: Stack) -> None:
    """An oracle-role holder publishes a point of small order (by mistake or to stop every
    patient): sealing to it would fail, so it is left out of the recipients and sealing goes on."""
    contract = stack.registry.contract
    honest = await stack.registry.recipients()
    role = await contract.functions.ORACLE_ROLE().call()
    await transact(stack, 0, contract.functions.grantRole(role, dev_account(7).address))
    await transact(stack, 7, contract.functions.setEncryptionKey(b"\x01" + bytes(31)))
    assert len(await stack.registry.encryption_keys()) == 2

    assert await stack.registry.recipients() == honest
    rng = np.random.default_rng(59)
    sealed = await envelope(stack, png(rng, malignant=False), PATIENT)
    opened = open_envelope(sealed, [oracle_identity(stack.settings)])
    assert opened.binding.owner == dev_account(PATIENT).address.lower()


async def test_plaintext_is_refused_unless_a_deployment_accepts_public_images(stack: Stack) -> None:
    rng = np.random.default_rng(59)
    image = png(rng, malignant=False)
    settings = stack.settings.tuned(accept_plaintext=True)
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(settings, stop))
    try:
        public = await send_registration(stack, await upload(stack, image), PATIENT)
        sealed = await register(stack, png(rng, malignant=True), PATIENT)
        statuses = await until_settled(stack, [public, sealed])
    finally:
        stop.set()
        await daemon
    assert statuses == {public: Status.CLASSIFIED, sealed: Status.CLASSIFIED}


async def test_the_plaintext_never_reaches_a_disk_a_log_or_the_database(
    stack: Stack, ipfs_node: IpfsNode, tmp_path: Path
) -> None:
    """The daemon as a user runs it, then every file it and the IPFS node wrote is searched for
    pieces of the image: a 64-byte window every 4 KiB, and the raw pixel rows."""
    rng = np.random.default_rng(61)
    images = [png(rng, malignant=bool(i % 2)) for i in range(3)]
    daemon = DaemonProcess(stack.settings, stack.settings.data_dir / "logs" / "oracle.log")
    daemon.log.parent.mkdir(parents=True, exist_ok=True)
    daemon.start()
    try:
        image_ids = [await register(stack, image, PATIENT) for image in images]
        statuses = await until_settled(stack, image_ids)
        await until_jobs_settled([stack.settings], image_ids)
    finally:
        assert daemon.stop() == 0
    assert Counter(statuses.values()) == {Status.CLASSIFIED: 3}
    patterns = []
    for image in images:
        patterns += [image[i : i + 64] for i in range(0, len(image) - 64, 4096)]
        pixels = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
        rows = [pixels[row].tobytes()[:256] for row in range(0, pixels.shape[0], 7)]
        patterns += [row for row in rows if len(set(row)) > 32][:20]  # textured rows: no chance matches
    written = [
        p for root in (stack.settings.data_dir, ipfs_node.data_dir) for p in root.rglob("*") if p.is_file()
    ]
    assert any(p.name == "oracle.log" for p in written)
    assert any(p.name.startswith("oracle.db") for p in written)
    leaks = [(str(p), i) for p in written for i, pattern in enumerate(patterns) if pattern in contents(p)]
    assert not leaks, leaks[:5]


async def test_the_cid_a_patient_registers_is_the_envelopes(stack: Stack) -> None:
    """Sanity for every test above: the registered CID addresses the ciphertext, and the oracle's
    document names the hash of the decrypted image, not of what IPFS holds. (An envelope that
    names no key for the owner gets no explanation: nothing else could be sealed for them.)"""
    image = png(np.random.default_rng(67), malignant=True)
    sealed = await envelope(stack, image, PATIENT, reply=False)
    cid = await upload(stack, sealed)
    _, document = await settled_document(
        stack, stack.settings, lambda: send_registration(stack, cid, PATIENT)
    )
    assert normalise(document["cid"]) == normalise(cid)
    assert (
        document["content_sha256"] == hashlib.sha256(image).hexdigest() != hashlib.sha256(sealed).hexdigest()
    )
    assert (document["schema_version"], document["task"], document["outputs"]) == (2, "classification", {})


async def test_the_owner_gets_a_heat_map_only_their_key_opens(stack: Stack, ipfs_node: IpfsNode) -> None:
    """The envelope names the patient's key: the oracle seals the Grad-CAM map to it, pins it, and
    the document names its CID and the sha256 of the PNG inside, bound to the owner."""
    image = png(np.random.default_rng(71), malignant=True)
    _, document = await settled_document(stack, stack.settings, lambda: register(stack, image, PATIENT))
    outputs = document["outputs"]
    assert set(outputs) == {"grad_cam", "grad_cam_sha256"}
    sealed = await gateway_bytes(ipfs_node, outputs["grad_cam"])
    patient_key = dev_patient_identity(PATIENT, stack.deployment.chain_id, stack.deployment.address)
    opened = open_envelope(sealed, [patient_key])
    assert opened.binding.owner == dev_account(PATIENT).address.lower()
    assert (opened.binding.chain_id, opened.binding.registry) == (
        stack.deployment.chain_id,
        stack.deployment.address.lower(),
    )
    assert opened.binding.media_type == "image/png"
    assert hashlib.sha256(opened.image).hexdigest() == outputs["grad_cam_sha256"]
    with Image.open(io.BytesIO(opened.image)) as heat, Image.open(io.BytesIO(image)) as original:
        assert (heat.mode, heat.size) == ("L", original.size)  # where it lies: tests/oracle/ml
    assert stack.settings.oracle_age_key is not None
    with pytest.raises(EnvelopeError):
        open_envelope(sealed, [oracle_identity(stack.settings)])  # sealed to the owner alone


async def test_an_explanation_that_cannot_be_pinned_costs_the_explanation_not_the_result(
    stack: Stack,
) -> None:
    settings = stack.settings.model_copy(update={"ipfs_port": free_port()})  # nothing listens there
    image = png(np.random.default_rng(73), malignant=False)
    image_id, document = await settled_document(stack, settings, lambda: register(stack, image, PATIENT))
    assert await stack.registry.status(image_id) == Status.CLASSIFIED
    (why,) = document["outputs"].values()
    assert why.startswith("pinning failed: ")


async def test_an_oracle_whose_key_is_not_on_chain_refuses_to_start(stack: Stack) -> None:
    """Patients encrypt to the keys on chain: an oracle with another key could open nothing."""
    other = stack.settings.model_copy(update={"oracle_age_key": SecretStr(str(x25519.Identity.generate()))})
    with pytest.raises(ConfigError, match="holds another encryption key for oracle 0x"):
        await run_daemon(other, asyncio.Event())
    unpublished = stack.settings.model_copy(
        update={"oracle_private_key": SecretStr(dev_account(8).key.hex())}
    )
    with pytest.raises(
        ConfigError, match=r"holds no encryption key for oracle .*histochain oracle publish-key"
    ):
        await run_daemon(unpublished, asyncio.Event())
