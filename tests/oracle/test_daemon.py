"""The oracle daemon end to end on real parts: anvil, a deployed registry with a freshly trained
checkpoint, the local IPFS node, images registered by several patients as the page would."""

import asyncio
import contextlib
import io
import json
import logging
import os
import sqlite3
from collections import Counter
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import torch
from aiohttp import web
from eth_account.messages import encode_defunct
from PIL import Image
from pydantic import SecretStr
from pyrage import x25519

from oracle.chain.anvil_accounts import dev_account
from oracle.chain.deploy import publish_encryption_key
from oracle.chain.errors import ChainError
from oracle.chain.reasons import FailureReason
from oracle.chain.registry import Registry, Status, hex32
from oracle.crypto.keys import public_key
from oracle.daemon.app import run_daemon
from oracle.dev.ipfs import IpfsNode
from oracle.document import verify
from oracle.ipfs import cid as cids
from oracle.ipfs.cid import raw_cid
from tests.oracle.daemon_support import (
    PATIENT_ACCOUNTS,
    Mode,
    Stack,
    envelope,
    register,
    rpc,
    send_registration,
    until_jobs_settled,
    until_settled,
    upload,
)
from tests.stores import job_rows
from tests.support import free_port, png, serve_gateway

IMAGES = 50


async def test_every_registration_gets_exactly_one_verifiable_result(stack: Stack):
    rng = np.random.default_rng(7)
    metrics_url = f"http://127.0.0.1:{free_port()}"
    settings = stack.settings.model_copy(update={"metrics_port": int(metrics_url.rsplit(":", 1)[1])})
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(settings, stop))
    try:
        image_ids = [
            await register(stack, png(rng, malignant=i % 2 == 1), PATIENT_ACCOUNTS[i % len(PATIENT_ACCOUNTS)])
            for i in range(IMAGES)
        ]
        garbage = await envelope(stack, os.urandom(5000), PATIENT_ACCOUNTS[0], "image/png")
        not_an_image = await send_registration(stack, await upload(stack, garbage), PATIENT_ACCOUNTS[0])
        never_uploaded = await send_registration(stack, raw_cid(os.urandom(64)), 6)
        statuses = await until_settled(stack, [*image_ids, not_an_image, never_uploaded])
        await until_jobs_settled([settings], [*image_ids, not_an_image, never_uploaded])
        async with aiohttp.ClientSession() as session, session.get(metrics_url + "/metrics") as response:
            assert response.status == 200
            metrics = await response.text()
    finally:
        stop.set()
        await daemon

    assert f'histochain_jobs_total{{outcome="result"}} {float(IMAGES)}' in metrics
    assert 'histochain_jobs_total{outcome="failure"} 2.0' in metrics
    assert 'histochain_queue_depth{queue="submit"} 0.0' in metrics
    assert "histochain_settle_seconds_count 52.0" in metrics
    assert "histochain_transactions_total" in metrics
    websocket_wakeups = [line for line in metrics.splitlines() if 'wakeups_total{source="websocket"}' in line]
    assert websocket_wakeups, "the listener follows new heads over the websocket"
    assert float(websocket_wakeups[0].split()[-1]) >= IMAGES

    assert all(statuses[i] == Status.CLASSIFIED for i in image_ids)
    posted = await stack.registry.contract.events.ResultPosted.get_logs(from_block=stack.deployment.block)
    counts = Counter(hex32(e["args"]["imageId"]) for e in posted)
    assert {i: counts[i] for i in image_ids} == dict.fromkeys(image_ids, 1)

    failed = await stack.registry.contract.events.ClassificationFailed.get_logs(
        from_block=stack.deployment.block
    )
    reasons = {hex32(e["args"]["imageId"]): e["args"]["reason"] for e in failed}
    assert reasons[not_an_image] == FailureReason.UNSUPPORTED_IMAGE
    assert reasons[never_uploaded] == FailureReason.CONTENT_UNREACHABLE

    db = sqlite3.connect(stack.settings.data_dir / "oracle.db")
    rows = dict(db.execute("SELECT image_id, document FROM jobs WHERE outcome = 'result'").fetchall())
    assert set(rows) == set(image_ids)
    for image_id in image_ids:
        document = json.loads(rows[image_id])
        # web3's own decoding of getImage, against the daemon's pre-resolved read of it
        owner, status, model_id, on_chain, *_ = await stack.registry.contract.functions.getImage(
            bytes.fromhex(image_id[2:])
        ).call()
        record = await stack.registry.image(image_id)
        assert (record.owner, record.status, record.model_id, record.result_hash) == (
            owner,
            Status(status),
            hex32(model_id),
            hex32(on_chain),
        )
        assert verify(document, bytes(on_chain))
        assert document["model_id"] == "0x" + stack.card.model_id.hex()
        assert document["label"] in stack.card.labels
        assert sum(document["probabilities"].values()) == pytest.approx(1.0)
        assert document["registry"] == stack.deployment.address
    states = Counter(state for (state,) in db.execute("SELECT state FROM jobs"))
    assert states == {"confirmed": IMAGES + 2}


async def test_registry_reads_refuse_an_answer_their_abi_cannot_decode(stack: Stack) -> None:
    """An address without the registry's code answers eth_call with no bytes: the read says so as
    a ChainError instead of passing on a decoding error or a default status."""
    assert await stack.registry.status("0x" + "ab" * 32) == Status.NONE
    elsewhere = stack.deployment.model_copy(update={"address": dev_account(7).address})
    with pytest.raises(ChainError, match="statusOf: the RPC answered 0x, which its ABI cannot decode"):
        await Registry(stack.w3, elsewhere).status("0x" + "ab" * 32)
    with pytest.raises(ChainError, match="getImage: the RPC answered 0x,"):
        await Registry(stack.w3, elsewhere).image("0x" + "ab" * 32)
    # Batched reads (one JSON-RPC batch per submit batch) check every answer the same way.
    assert await stack.registry.statuses(["0x" + "ab" * 32, "0x" + "cd" * 32]) == {
        "0x" + "ab" * 32: Status.NONE,
        "0x" + "cd" * 32: Status.NONE,
    }
    with pytest.raises(ChainError, match="getImage: the RPC answered 0x,"):
        await Registry(stack.w3, elsewhere).images(["0x" + "ab" * 32, "0x" + "cd" * 32])


async def settled(stack: Stack, image_ids: list[str]) -> int:
    return sum(s != Status.PENDING for s in (await stack.registry.statuses(image_ids)).values())


async def test_sigkill_at_random_moments_loses_and_doubles_nothing(stack: Stack, mode: Mode, tmp_path: Path):
    """Distributed, the kills take turns between the coordinator and the worker."""
    rng = np.random.default_rng(2026)
    count = 60  # six kills among 60 registrations (100 took 40 s longer for the same six kills)
    images = [png(rng, malignant=bool(i % 2)) for i in range(count)]
    kill_at = sorted(int(k) for k in rng.choice(np.arange(5, count - 5), size=6, replace=False))
    settings = mode.settings(stack.settings)
    daemons = mode.processes(settings, tmp_path)
    for daemon in daemons:
        daemon.start()
    kills = 0

    def kill_one() -> None:
        nonlocal kills
        kill_at.pop(0)
        victim = daemons[kills % len(daemons)]
        victim.kill()
        victim.start()
        kills += 1

    image_ids: list[str] = []
    try:
        for i, data in enumerate(images):
            image_ids.append(await register(stack, data, PATIENT_ACCOUNTS[i % len(PATIENT_ACCOUNTS)]))
            while kill_at and await settled(stack, image_ids) >= kill_at[0]:
                kill_one()
        while kill_at:  # kill points the registrations outran: keep killing as the backlog drains
            if await settled(stack, image_ids) >= kill_at[0]:
                kill_one()
            await asyncio.sleep(0.1)
        await until_settled(stack, image_ids, timeout=300)
        await until_jobs_settled([settings], image_ids)
    finally:
        codes = [daemon.stop() for daemon in daemons]
    assert codes == [0] * len(daemons), [d.log.read_text()[-3000:] for d in daemons]
    assert sum(d.kills for d in daemons) == 6

    block = stack.deployment.block
    posted = await stack.registry.contract.events.ResultPosted.get_logs(from_block=block)
    failed = await stack.registry.contract.events.ClassificationFailed.get_logs(from_block=block)
    outcomes = Counter(hex32(e["args"]["imageId"]) for e in [*posted, *failed])
    assert {i: outcomes[i] for i in image_ids} == dict.fromkeys(image_ids, 1)
    jobs = await job_rows(settings.database)
    assert {jobs[i]["state"] for i in image_ids} == {"confirmed"}
    for image_id in image_ids:
        on_chain = (await stack.registry.contract.functions.getImage(bytes.fromhex(image_id[2:])).call())[3]
        assert verify(jobs[image_id]["document"], bytes(on_chain))


async def test_a_reorganised_registration_is_redone_in_the_new_chain(stack: Stack, mode: Mode):
    """A result posted in blocks a reorg erases is not trusted: the registration made again in
    the new chain is classified again, and the job tracks the canonical block."""
    rng = np.random.default_rng(11)
    first_image = png(rng, malignant=True)
    settings = mode.settings(stack.settings)
    stop = asyncio.Event()
    daemon = asyncio.create_task(mode.run(settings, stop))
    try:
        snapshot = await rpc(stack, "evm_snapshot")
        cid = await upload(stack, await envelope(stack, first_image, 2))
        erased = await send_registration(stack, cid, 2)
        await until_settled(stack, [erased])
        assert await rpc(stack, "evm_revert", snapshot)
        assert await stack.registry.status(erased) == Status.NONE
        other = await register(stack, png(rng, malignant=False), 3)
        again = await send_registration(stack, cid, 2)  # the same envelope, by the same owner
        assert again == erased
        for _ in range(6):
            await rpc(stack, "evm_mine")
        await until_settled(stack, [again, other])
        await until_jobs_settled([settings], [again, other])
    finally:
        stop.set()
        await daemon

    posted = await stack.registry.contract.events.ResultPosted.get_logs(from_block=stack.deployment.block)
    counts = Counter(hex32(e["args"]["imageId"]) for e in posted)
    assert (counts[again], counts[other]) == (1, 1)
    job = (await job_rows(settings.database))[again]
    (registered,) = [
        e
        for e in await stack.registry.contract.events.ImageRegistered.get_logs(
            from_block=stack.deployment.block
        )
        if hex32(e["args"]["imageId"]) == again
    ]
    assert job["state"] == "confirmed"
    assert job["block_hash"] == hex32(registered["blockHash"])
    assert job["owner"] == registered["args"]["owner"]
    on_chain = (await stack.registry.contract.functions.getImage(bytes.fromhex(again[2:])).call())[3]
    assert verify(job["document"], bytes(on_chain))


async def test_two_oracles_never_double_post(stack: Stack, tmp_path: Path):
    admin = dev_account(0)
    rival = dev_account(7)
    contract = stack.registry.contract
    grant = await contract.functions.grantRole(
        await contract.functions.ORACLE_ROLE().call(), rival.address
    ).build_transaction(
        {"from": admin.address, "nonce": await stack.w3.eth.get_transaction_count(admin.address, "pending")}
    )
    await stack.w3.eth.wait_for_transaction_receipt(
        await stack.w3.eth.send_raw_transaction(admin.sign_transaction(grant).raw_transaction)
    )
    rival_key = x25519.Identity.generate()  # a second oracle publishes its own key: images are sealed to both
    await asyncio.to_thread(
        publish_encryption_key, stack.settings.rpc_urls[0], stack.deployment, rival, public_key(rival_key)
    )
    rival_settings = stack.settings.model_copy(
        update={
            "data_dir": tmp_path / "rival",
            "oracle_private_key": SecretStr(rival.key.hex()),
            "oracle_age_key": SecretStr(str(rival_key)),
        }
    )
    rival_settings.data_dir.mkdir()

    rng = np.random.default_rng(5)
    stop = asyncio.Event()
    daemons = [asyncio.create_task(run_daemon(s, stop)) for s in (stack.settings, rival_settings)]
    try:
        image_ids = [
            await register(stack, png(rng, malignant=bool(i % 2)), PATIENT_ACCOUNTS[i % 4]) for i in range(30)
        ]
        await until_settled(stack, image_ids)
        await until_jobs_settled([stack.settings, rival_settings], image_ids)
    finally:
        stop.set()
        await asyncio.gather(*daemons)

    posted = await contract.events.ResultPosted.get_logs(from_block=stack.deployment.block)
    counts = Counter(hex32(e["args"]["imageId"]) for e in posted)
    assert {i: counts[i] for i in image_ids} == dict.fromkeys(image_ids, 1)
    dbs = [sqlite3.connect(s.data_dir / "oracle.db") for s in (stack.settings, rival_settings)]
    for image_id in image_ids:
        rows = [
            db.execute("SELECT state, result_hash FROM jobs WHERE image_id = ?", (image_id,)).fetchone()
            for db in dbs
        ]
        on_chain = (
            "0x" + bytes((await contract.functions.getImage(bytes.fromhex(image_id[2:])).call())[3]).hex()
        )
        winners = [row for row in rows if row[0] == "confirmed"]
        assert len(winners) == 1, rows
        assert winners[0][1] == on_chain
        assert sorted(row[0] for row in rows) == ["confirmed", "superseded"]


class FaultyGateway:
    """A gateway in front of the real node that misbehaves per CID."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.modes: dict[str, str] = {}
        self.released = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        mode = self.modes.get(cids.normalise(request.match_info["cid"]), "pass")
        if mode == "hang":
            await self.released.wait()
            return web.Response(status=504)
        if mode == "500":
            return web.Response(status=500)
        if mode == "huge":  # an endless body: the fetcher must stop reading at its cap
            response = web.StreamResponse()
            await response.prepare(request)
            chunk = b"\x00" * (1 << 20)
            for _ in range(2048):
                await response.write(chunk)
            return response
        async with aiohttp.ClientSession() as s, s.get(self.upstream + request.path_qs) as upstream:
            body = await upstream.read()
        if mode == "wrong":
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        return web.Response(status=upstream.status, body=body)


class FlakyRpc:
    """A TCP proxy to anvil that can drop every connection, as a failing RPC endpoint does."""

    def __init__(self, target_port: int) -> None:
        self.target_port, self.dropping, self.dropped = target_port, False, 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.dropping:
            self.dropped += 1
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    if self.dropping:
                        self.dropped += 1
                        break
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_faults_end_in_the_right_outcome_and_the_daemon_stays_up(stack: Stack, ipfs_node: IpfsNode):
    rng = np.random.default_rng(3)
    gateway = FaultyGateway(ipfs_node.url)
    runner, gateway_url = await serve_gateway(gateway.handle)
    rpc = FlakyRpc(int(stack.settings.rpc_urls[0].rsplit(":", 1)[1]))
    rpc_port = await rpc.start()
    settings = stack.settings.tuned(fetch_timeout=1.0).model_copy(
        update={
            "gateways": [gateway_url],
            "rpc_urls": [f"http://127.0.0.1:{rpc_port}"],
            "max_image_bytes": 4 << 20,
        }
    )
    bomb = io.BytesIO()
    Image.new("1", (10_000, 8_000)).save(bomb, format="PNG")
    # The only gateway: wrong bytes make it a failed gateway, not a verdict on the content.
    cases = {"hang": FailureReason.CONTENT_UNREACHABLE, "500": FailureReason.CONTENT_UNREACHABLE}
    cases |= {"wrong": FailureReason.CONTENT_UNREACHABLE, "huge": FailureReason.TOO_LARGE}
    expected: dict[str, FailureReason | None] = {}

    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(settings, stop))
    try:
        for mode, reason in cases.items():
            cid = await upload(stack, await envelope(stack, png(rng, malignant=True), 2))
            gateway.modes[cids.normalise(cid)] = mode
            expected[await send_registration(stack, cid, 2)] = reason
        expected[await register(stack, bomb.getvalue(), 3)] = FailureReason.TOO_LARGE
        expected[await register(stack, png(rng, malignant=False), 4)] = None
        await until_settled(stack, list(expected))

        rpc.dropping = True
        during_outage = await register(stack, png(rng, malignant=True), 5)
        while rpc.dropped < 3:
            await asyncio.sleep(0.1)
        rpc.dropping = False
        expected[during_outage] = None
        await until_settled(stack, list(expected))
        assert not daemon.done()
    finally:
        stop.set()
        gateway.released.set()
        await daemon
        await runner.cleanup()
        assert rpc.server is not None
        rpc.server.close()

    failed = await stack.registry.contract.events.ClassificationFailed.get_logs(
        from_block=stack.deployment.block
    )
    reasons = {hex32(e["args"]["imageId"]): FailureReason(e["args"]["reason"]) for e in failed}
    for image_id, reason in expected.items():
        if reason is None:
            assert await stack.registry.status(image_id) == Status.CLASSIFIED
        else:
            assert reasons.get(image_id) == reason, (image_id, reasons.get(image_id))


async def test_with_confirmations_a_reorganised_registration_is_never_classified(stack: Stack, mode: Mode):
    rng = np.random.default_rng(13)
    settings = mode.settings(stack.settings).tuned(confirmations=3)
    stop = asyncio.Event()
    daemon = asyncio.create_task(mode.run(settings, stop))
    try:
        snapshot = await rpc(stack, "evm_snapshot")
        doomed = await register(stack, png(rng, malignant=True), 2)
        assert await rpc(stack, "evm_revert", snapshot)
        replacement = await register(stack, png(rng, malignant=False), 3)
        for _ in range(settings.tuning.confirmations):
            await rpc(stack, "evm_mine")
        await until_settled(stack, [replacement])
        await until_jobs_settled([settings], [replacement])
    finally:
        stop.set()
        await daemon
    jobs = await job_rows(settings.database)
    assert doomed not in jobs
    assert jobs[replacement]["state"] == "confirmed"
    assert await stack.registry.status(doomed) == Status.NONE


async def test_without_a_websocket_the_listener_polls_through_the_rpc_that_answers(stack: Stack):
    """The first RPC URL is down and the websocket unreachable: the daemon polls the second URL."""
    rng = np.random.default_rng(17)
    metrics_port = free_port()
    settings = stack.settings.model_copy(
        update={
            "ws_url": "ws://127.0.0.1:1",
            "metrics_port": metrics_port,
            "rpc_urls": ["http://127.0.0.1:1", *stack.settings.rpc_urls],
        }
    )
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(settings, stop))
    try:
        image_id = await register(stack, png(rng, malignant=False), 4)
        await until_settled(stack, [image_id])
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            metrics = await response.text()
    finally:
        stop.set()
        await daemon
    assert await stack.registry.status(image_id) == Status.CLASSIFIED
    assert 'histochain_listener_wakeups_total{source="poll"}' in metrics
    assert 'source="websocket"' not in metrics


async def test_the_owner_reads_from_the_api_a_document_that_hashes_to_the_chain(stack: Stack):
    """Daemon → SQLite → `histochain api` → the patient's signed-in read, checked against the chain."""
    from oracle.api.app import ApiConfig, create_app
    from oracle.api.auth import AuthConfig
    from oracle.store.db import Database
    from tests.support import serve

    rng = np.random.default_rng(23)
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(stack.settings, stop))
    try:
        image_id = await register(stack, png(rng, malignant=True), 3)
        await until_settled(stack, [image_id])
        await until_jobs_settled([stack.settings], [image_id])
    finally:
        stop.set()
        await daemon

    db = Database(stack.settings.database)
    auth_config = AuthConfig(
        "localhost:8000", "http://localhost:8000", stack.deployment.chain_id, stack.deployment.address
    )
    runner, api = await serve(create_app(db, ApiConfig(), auth_config))
    patient = dev_account(3)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(api + "/v1/auth/nonce", json={"address": patient.address}) as r:
                message = (await r.json())["message"]
            signature = "0x" + patient.sign_message(encode_defunct(text=message)).signature.hex()
            async with http.post(
                api + "/v1/auth/verify", json={"message": message, "signature": signature}
            ) as r:
                token = (await r.json())["token"]
            async with http.get(
                f"{api}/v1/images/{image_id}/document", headers={"Authorization": f"Bearer {token}"}
            ) as r:
                assert r.status == 200
                served = await r.json()
    finally:
        await runner.cleanup()
        await db.close()
    on_chain = (await stack.registry.contract.functions.getImage(bytes.fromhex(image_id[2:])).call())[3]
    assert verify(served["document"], bytes(on_chain))
    assert served["document"]["image_id"] == image_id


async def test_a_first_start_is_not_taken_for_a_reorg(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    """The listener's first checkpoint, the block before the deployment, has no hash yet; a
    registry deployed past block 1 once made every first start log a reorg and rescan."""
    caplog.set_level(logging.INFO, logger="histochain")
    await rpc(stack, "anvil_mine", "0x5")
    later = stack.deployment.model_copy(update={"block": await stack.w3.eth.block_number})
    later.save(stack.settings.deployment_path)
    threads = torch.get_num_threads()
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(stack.settings, stop))
    try:
        image_id = await register(stack, png(np.random.default_rng(29), malignant=False), 3)
        assert (await until_settled(stack, [image_id]))[image_id] == Status.CLASSIFIED
    finally:
        stop.set()
        await daemon
    assert "oracle 0x" in caplog.text, "the daemon's own log is captured"
    assert "reorg" not in caplog.text
    assert torch.get_num_threads() == threads, "the daemon gives the process its torch threads back"
