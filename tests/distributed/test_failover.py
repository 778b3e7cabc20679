"""The distributed mode as an operator runs it: PostgreSQL, redis-server, an active and a standby
coordinator and three workers, each its own `histochain oracle run --role …` process. A burst of
registrations; during it, two workers and the active coordinator are SIGKILLed. Everything is
polled for, never timed: the machine's speed decides when the workers hold work, not whether."""

import asyncio
import contextlib
import itertools
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


def pid(daemon: DaemonProcess) -> int:
    assert daemon.process is not None
    return daemon.process.pid


def stat(process: Path) -> list[str]:
    """The fields of a /proc/<pid> (or …/task/<tid>) folder's stat after the name: state, ppid, …"""
    return (process / "stat").read_text().rsplit(")", 1)[1].split()


def descendants(process: int) -> list[int]:
    """Every process under `process`: a worker's sandbox processes and their resource tracker."""
    children: dict[int, list[int]] = {}
    for folder in Path("/proc").iterdir():
        if folder.name.isdigit():
            with contextlib.suppress(OSError):  # exited meanwhile
                children.setdefault(int(stat(folder)[1]), []).append(int(folder.name))
    found: list[int] = []
    todo = [process]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


async def until_stopped(process: int, timeout: float = 10) -> None:
    """Returns once every thread of `process` has stopped (a signal is delivered asynchronously)."""

    def stopped() -> bool:
        for task in Path(f"/proc/{process}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread that exited meanwhile
                if stat(task)[0] != "T":
                    return False
        return True

    deadline = asyncio.get_running_loop().time() + timeout
    while not stopped():
        assert asyncio.get_running_loop().time() < deadline, f"{process} not stopped after {timeout} s"
        await asyncio.sleep(0.01)


async def hang_two(stores: Stores, workers: list[DaemonProcess]) -> list[DaemonProcess]:
    """SIGSTOPs two workers that each hold a work message, if two do now, and returns them; if
    not, or if one acknowledged before its stop took hold, resumes them and returns []. A worker
    reads as the consumer `host:pid` (oracle.daemon.stream.consumer_name)."""
    by_pid = {pid(worker): worker for worker in workers}

    def holders(held: dict[str, int]) -> list[DaemonProcess]:
        return [by_pid[int(name.rsplit(":", 1)[1])] for name in held]

    hung = holders(await holding(stores))[:2]
    if len(hung) < 2:
        return []
    for worker in hung:
        os.kill(pid(worker), signal.SIGSTOP)
    for worker in hung:
        await until_stopped(pid(worker))
    still = holders(await holding(stores))
    if all(worker in still for worker in hung):
        return hung
    for worker in hung:
        os.kill(pid(worker), signal.SIGCONT)
    return []


async def kill_tree(daemon: DaemonProcess) -> None:
    """SIGKILLs `daemon`, stopped or not (SIGKILL ends a stopped process too), and the processes
    under it: a worker's sandbox processes would exit only once they noticed it gone."""
    os.kill(pid(daemon), signal.SIGSTOP)  # it starts no process while its tree is read
    await until_stopped(pid(daemon))
    under = descendants(pid(daemon))
    daemon.kill()
    for process in under:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)


async def test_kills_during_a_burst_lose_and_double_nothing(stack: Stack, stores: Stores, tmp_path: Path):
    rng = np.random.default_rng(16)
    originals = [png(rng, malignant=bool(i % 2)) for i in range(12)]
    cids = []
    for i in range(BURST):  # every envelope is new ciphertext, hence a new CID
        patient = PATIENT_ACCOUNTS[i % len(PATIENT_ACCOUNTS)]
        cids.append(
            (await upload(stack, await envelope(stack, originals[i % len(originals)], patient)), patient)
        )
    burst = iter(cids)
    image_ids: list[str] = []

    async def register(count: int) -> None:
        for cid, patient in itertools.islice(burst, count):
            image_ids.append(await send_registration(stack, cid, patient))

    env = stores.environment()
    coordinators = [
        DaemonProcess(stack.settings, tmp_path / f"coordinator-{c}.log", "coordinator", env) for c in "ab"
    ]
    workers = [DaemonProcess(stack.settings, tmp_path / f"worker-{w}.log", "worker", env) for w in range(3)]
    active, standby = coordinators
    hung: list[DaemonProcess] = []
    try:
        active.start()
        active.running(b"active coordinator")
        standby.start()
        standby.running(b"standby: another coordinator holds the lock")
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.running()

        await register(BURST // 6)
        while not hung:  # two workers hang, each holding the message it was reading
            assert len(image_ids) < BURST // 2, (
                f"no two workers held a message at once in {len(image_ids)} registrations"
            )
            await register(1)
            hung = await hang_two(stores, workers)
        (survivor,) = (worker for worker in workers if worker not in hung)
        await register(BURST // 6)
        for worker in hung:  # ... and die without acknowledging it
            await kill_tree(worker)
        await register(BURST // 6)
        await kill_tree(active)
        await register(BURST)  # the rest
        statuses = await until_settled(stack, image_ids, timeout=600)
        await until_jobs_confirmed(stores, image_ids)
        for process in (standby, survivor):
            assert process.stop() == 0, process.log.read_text()[-3000:]
    finally:  # whatever failed: no process of this test outlives it, stopped or not
        for process in [*coordinators, *workers]:
            if process.process is not None and process.process.poll() is None:
                await kill_tree(process)
    assert (active.kills, *(worker.kills for worker in hung)) == (1, 1, 1)
    assert '"msg": "drained"' in survivor.log.read_text()  # SIGTERM: finished what it held, then exited
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
