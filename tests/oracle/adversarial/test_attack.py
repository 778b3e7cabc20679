"""The oracle under attack, as deployed: anvil, the local IPFS node, `histochain oracle run` as a
process, and an IPFS network (hostile.Network) that serves whatever attackers published.

One test, in phases on one daemon: the honest latency with no attack; the same honest load while
20 hostile registrations are in flight (each must end in its on-chain verdict, and the honest
p95 may be at most 3x the first); SIGTERM in the middle of a second wave; a restart that
finishes every job and serves new patients."""

import asyncio
import json
import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from oracle.chain.reasons import FailureReason
from oracle.chain.registry import hex32
from oracle.crypto.envelope import EnvelopeError, MediaType, media_type_of
from oracle.ipfs import cid as cids
from tests.oracle.adversarial.hostile import Network, exponential, many_tiny_blocks, truncated_varint
from tests.oracle.adversarial.test_corpus import CORPUS, MANIFEST
from tests.oracle.daemon_support import (
    PATIENT_ACCOUNTS,
    DaemonProcess,
    Stack,
    envelope,
    send_registration,
    upload,
)
from tests.support import png

ATTACKERS = (6, 7, 8, 9)
PACE = 0.2  # seconds between two honest registrations, in every phase
HONEST = 50
CLASSIFIED = 0  # in `Outcomes.seen`: a ResultPosted


@dataclass
class Outcomes:
    """Each image's on-chain outcome (CLASSIFIED or its failure reason) and when the test first
    saw it, read from the registry's events as they are mined."""

    stack: Stack
    seen: dict[str, tuple[int, float]] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)

    async def follow(self) -> None:
        contract = self.stack.registry.contract
        start = self.stack.deployment.block
        while True:
            head = await self.stack.w3.eth.block_number
            if head >= start:
                now = time.monotonic()
                posted = await contract.events.ResultPosted.get_logs(from_block=start, to_block=head)
                failed = await contract.events.ClassificationFailed.get_logs(from_block=start, to_block=head)
                for event in [*posted, *failed]:
                    image_id = hex32(event["args"]["imageId"])
                    self.seen.setdefault(image_id, (event["args"].get("reason", CLASSIFIED), now))
                    self.events[image_id] += 1
                start = head + 1
            await asyncio.sleep(0.05)

    async def until(self, image_ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(i in self.seen for i in image_ids):
            left = [i for i in image_ids if i not in self.seen]
            assert time.monotonic() < deadline, f"{len(left)} images without an outcome after {timeout} s"
            await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Hostile:
    cid: str
    account: int
    expected: FailureReason
    what: str


def media_type(name: str, data: bytes) -> MediaType:
    """What an attacker's page would claim: the sniffed type, else the one the name suggests."""
    try:
        return media_type_of(data)
    except EnvelopeError:
        return "image/tiff" if "tif" in name else "image/png"


async def wave(stack: Stack, network: Network, poison: list[str], dags: int) -> list[Hostile]:
    """`dags` of each hostile DAG kind (published on the network only), the named poison images
    sealed and uploaded, a garbage envelope, and CIDs nobody answers; from the attackers in turn."""
    found: list[tuple[str, FailureReason, str]] = []
    for _ in range(dags):
        for dag, reason, what in (
            (exponential(30, honest_sizes=True), FailureReason.TOO_LARGE, "2^30 leaves, sizes declared"),
            (exponential(30, honest_sizes=False), FailureReason.CONTENT_MISMATCH, "2^30 leaves, sizes lie"),
            (truncated_varint(), FailureReason.CONTENT_MISMATCH, "a cut varint in UnixFS data"),
        ):
            network.published[str(dag.root)] = dag.car()
            found.append((str(dag.root), reason, what))
        root, car = many_tiny_blocks(100_000)
        network.published[root] = car
        found.append((root, FailureReason.CONTENT_MISMATCH, "100k tiny blocks"))
    for _ in range(dags + 1):
        silent = cids.raw_cid(os.urandom(64))
        network.unanswered.add(silent)
        found.append((silent, FailureReason.CONTENT_UNREACHABLE, "never answered"))
    out = [Hostile(c, ATTACKERS[i % 4], reason, what) for i, (c, reason, what) in enumerate(found)]
    for name in [*poison, "no envelope"]:
        account = ATTACKERS[len(out) % 4]
        if name == "no envelope":
            cid, reason = await upload(stack, os.urandom(2000)), FailureReason.NOT_DECRYPTABLE
        else:
            data = (CORPUS / name).read_bytes()
            cid = await upload(stack, await envelope(stack, data, account, media_type(name, data)))
            reason = FailureReason[MANIFEST[name]["reason"]]
        out.append(Hostile(cid, account, reason, name))
    return out


async def honest(stack: Stack, rng: np.random.Generator, count: int) -> list[tuple[str, int]]:
    """(CID, patient): sealed and uploaded before the clock starts, so the latency measured is
    the oracle's."""
    out = []
    for i in range(count):
        patient = PATIENT_ACCOUNTS[i % len(PATIENT_ACCOUNTS)]
        out.append((await upload(stack, await envelope(stack, png(rng, bool(i % 2)), patient)), patient))
    return out


async def paced(stack: Stack, cids_and_accounts: list[tuple[str, int]], pace: float) -> dict[str, float]:
    """Registers at a fixed pace (the load, the same in every phase); returns when each was mined."""
    registered: dict[str, float] = {}
    start = time.monotonic()
    for slot, (cid, account) in enumerate(cids_and_accounts):
        await asyncio.sleep(max(0.0, start + slot * pace - time.monotonic()))
        registered[await send_registration(stack, cid, account)] = time.monotonic()
    return registered


def p95(outcomes: Outcomes, registered: dict[str, float]) -> float:
    return float(np.percentile([outcomes.seen[i][1] - t for i, t in registered.items()], 95))


@pytest.fixture
async def network(stack: Stack) -> AsyncIterator[tuple[Network, str]]:
    node = stack.settings.gateways[0]
    net = Network(node)
    url = await net.start()
    yield net, url
    await net.close()


async def test_honest_patients_are_served_while_attackers_pay_for_their_attacks(
    stack: Stack, network: tuple[Network, str]
) -> None:
    net, net_url = network
    settings = stack.settings.tuned(fetch_timeout=1.5, fetch_deadline=4.0, unreachable_grace=45.0)
    settings = settings.model_copy(update={"gateways": [net_url, *stack.settings.gateways]})
    log = settings.data_dir / "oracle.log"
    rng = np.random.default_rng(15)
    patients = await honest(stack, rng, 2 * HONEST + 14)
    first = await wave(stack, net, sorted(MANIFEST), dags=2)
    assert len(first) == 20
    second = await wave(stack, net, sorted(MANIFEST)[:2], dags=1)

    outcomes = Outcomes(stack)
    follower = asyncio.create_task(outcomes.follow())
    daemon = DaemonProcess(settings, log)
    daemon.start()
    try:
        # No attack: a warm-up, then the honest load alone.
        warm = await paced(stack, patients[:4], PACE)
        await outcomes.until(list(warm), 120)
        calm = await paced(stack, patients[4:54], PACE)
        await outcomes.until(list(calm), 120)
        assert {outcomes.seen[i][0] for i in [*warm, *calm]} == {CLASSIFIED}

        # The same load while 20 hostile registrations arrive from four accounts; a gateway
        # answers every fifth honest image with a flipped byte.
        load = patients[54:104]
        lied_to = [c for c, _ in load[::5]]
        net.lying.update(lied_to)
        attack = [(h.cid, h.account) for h in first]
        attacked, busy = await asyncio.gather(
            paced(stack, attack, PACE * HONEST / len(attack)), paced(stack, load, PACE)
        )
        await outcomes.until(list(busy), 120)
        assert {outcomes.seen[i][0] for i in busy} == {CLASSIFIED}
        assert all(net.lies[c] >= 1 for c in lied_to)
        calm_p95, attack_p95 = p95(outcomes, calm), p95(outcomes, busy)
        print(f"honest p95: {calm_p95:.2f} s with no attack, {attack_p95:.2f} s under attack")
        assert attack_p95 <= 3 * calm_p95, (calm_p95, attack_p95)
        assert any(i not in outcomes.seen for i in attacked), "the unanswered should be in their grace"

        # A second wave, and SIGTERM as soon as the daemon has taken it in.
        more = await paced(stack, [(h.cid, h.account) for h in second], 0.0)
        db = settings.data_dir / "oracle.db"
        await until_recorded(db, list(more))
        assert daemon.process is not None
        signalled = time.monotonic()
        daemon.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(daemon.process.wait, 30)
        stopped_in = time.monotonic() - signalled
        print(f"SIGTERM during the attack: exit {code} in {stopped_in:.2f} s")
        assert code == 0
        assert stopped_in < 10
        pending = [i for i in [*attacked, *more] if i not in outcomes.seen]
        assert pending, "SIGTERM should have found hostile work in flight"

        # A restart finishes every job and serves new patients as it does.
        daemon.start()
        late = await paced(stack, patients[104:], PACE)
        await outcomes.until(list(late), 120)
        assert {outcomes.seen[i][0] for i in late} == {CLASSIFIED}
        await outcomes.until([*attacked, *more], 120)
        assert daemon.stop() == 0
    finally:
        follower.cancel()
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.kill()

    assert set(outcomes.events.values()) == {1}, "every image settles exactly once"
    by_id = dict(zip(attacked, first, strict=True)) | dict(zip(more, second, strict=True))
    verdicts = {i: (h.what, FailureReason(outcomes.seen[i][0]).name) for i, h in by_id.items()}
    assert verdicts == {i: (h.what, h.expected.name) for i, h in by_id.items()}
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    print(json.dumps(Counter(reason for _, reason in verdicts.values())))


async def until_recorded(db: os.PathLike[str], image_ids: list[str], timeout: float = 30) -> None:
    """Until the daemon's job store holds every one of `image_ids`."""
    deadline = time.monotonic() + timeout
    marks = ",".join("?" * len(image_ids))
    while True:
        with sqlite3.connect(db) as conn:
            query = f"SELECT count(*) FROM jobs WHERE image_id IN ({marks})"
            count = conn.execute(query, image_ids).fetchone()[0]
        if count == len(image_ids):
            return
        assert time.monotonic() < deadline, f"{len(image_ids) - count} registrations not taken in"
        await asyncio.sleep(0.05)
