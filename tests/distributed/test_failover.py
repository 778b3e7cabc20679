"""The distributed mode as an operator runs it: PostgreSQL, redis-server, an active and a standby
coordinator and three workers, each its own `histochain oracle run --role …` process. A burst of
registrations; during it, two workers and the active coordinator are SIGKILLed."""

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis

from oracle.chain.registry import Status, hex32
from oracle.daemon.stream import GROUP, STREAM
from oracle.document import verify
from tests.oracle.daemon_support import (
    PATIENT_ACCOUNTS,
    DaemonProcess,
    Stack,
    envelope,
    send_registration,
    until_settled,
    upload,
)
from tests.stores import Stores, job_rows
from tests.support import png

BURST = 300


async def holding(stores: Stores) -> dict[str, int]:
    """Work messages delivered and not acknowledged, by consumer (worker)."""
    client = aioredis.Redis.from_url(stores.redis_url)
    try:
        consumers = await client.xinfo_consumers(STREAM, GROUP)
    finally:
        await client.aclose()
    return {c["name"].decode(): int(c["pending"]) for c in consumers if c["pending"]}


async def until_jobs_confirmed(stores: Stores, image_ids: list[str], timeout: float = 120) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        jobs = await job_rows(stores.database_url)
        open_jobs = [i for i in image_ids if jobs.get(i, {}).get("state") not in ("confirmed", "superseded")]
        if not open_jobs:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{len(open_jobs)} jobs still open"
        await asyncio.sleep(0.2)


async def test_kills_during_a_burst_lose_and_double_nothing(stack: Stack, stores: Stores, tmp_path: Path):
    rng = np.random.default_rng(16)
    originals = [png(rng, malignant=bool(i % 2)) for i in range(12)]
    cids = []
    for i in range(BURST):  # every envelope is new ciphertext, hence a new CID
        patient = PATIENT_ACCOUNTS[i % len(PATIENT_ACCOUNTS)]
        cids.append(
            (await upload(stack, await envelope(stack, originals[i % len(originals)], patient)), patient)
        )

    env = stores.environment()
    coordinators = [
        DaemonProcess(stack.settings, tmp_path / f"coordinator-{c}.log", "coordinator", env) for c in "ab"
    ]
    workers = [DaemonProcess(stack.settings, tmp_path / f"worker-{w}.log", "worker", env) for w in range(3)]
    active, standby = coordinators
    active.start()
    active.running(b"active coordinator")
    standby.start()
    standby.running(b"standby: another coordinator holds the lock")
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.running()

    image_ids: list[str] = []
    try:
        for i, (cid, patient) in enumerate(cids):
            image_ids.append(await send_registration(stack, cid, patient))
            if i == BURST // 6:  # two workers hang, each holding the message it was reading
                for worker in workers[:2]:
                    assert worker.process is not None
                    os.kill(worker.process.pid, signal.SIGSTOP)
            if i == BURST // 3:  # ... and die without acknowledging it
                assert len(await holding(stores)) >= 2
                workers[0].kill()
                workers[1].kill()
            if i == BURST // 2:
                active.kill()
        statuses = await until_settled(stack, image_ids, timeout=600)
        await until_jobs_confirmed(stores, image_ids)
    finally:
        for process in (standby, workers[2]):
            assert process.stop() == 0, process.log.read_text()[-3000:]
    assert (active.kills, workers[0].kills, workers[1].kills) == (1, 1, 1)
    assert '"msg": "drained"' in workers[2].log.read_text()  # SIGTERM: finished what it held, then exited
    standby_log = standby.log.read_text()
    assert "taking over as active coordinator" in standby_log
    assert await holding(stores) == {}  # the dead workers' messages were taken over and acknowledged

    # Exactly one outcome per image on chain, none pending.
    block = stack.deployment.block
    posted = await stack.registry.contract.events.ResultPosted.get_logs(from_block=block)
    failed = await stack.registry.contract.events.ClassificationFailed.get_logs(from_block=block)
    outcomes = Counter(hex32(e["args"]["imageId"]) for e in [*posted, *failed])
    assert {i: outcomes[i] for i in image_ids} == dict.fromkeys(image_ids, 1)
    assert set(statuses.values()) == {Status.CLASSIFIED}
    # No job lost: every registration is a confirmed job whose document hashes to the chain.
    jobs = await job_rows(stores.database_url)
    assert {jobs[i]["state"] for i in image_ids} == {"confirmed"}
    records = await stack.registry.images(image_ids)
    for image_id, record in zip(image_ids, records, strict=True):
        assert verify(jobs[image_id]["document"], bytes.fromhex(record.result_hash[2:]))
