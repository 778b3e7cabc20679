"""What a hostile registration costs the oracle against what it costs the attacker, from a run.

    .venv/bin/python -m bench.hostile [--per-kind 32] [--fee-gwei 2000000] [--failure-fee-gwei 1100000]
                                      [--sr-fee-gwei 6000000] [--gas-price-gwei 20] [--grace 30]

Real anvil, the local IPFS node, the registry deployed with a classifier and a super-resolution
model (each with its own fee, the same failure fee), and the real daemon (`run_daemon` in a
process of its own, as bench.oracle runs it) reading first from an IPFS network gateway in front
of the node that serves what the attackers published (tests/oracle/adversarial/hostile.py, the
adversarial suite's). One kind after another, N
registrations of that kind are sent at once from anvil's accounts 6-9, each paying the fee, and
the bench waits until every one has its outcome on chain. The newer kinds (an oversized age header,
flat and flooding super-resolution inputs) are sent with honest classifications beside them, whose
latency (receipt to outcome) is compared with the calm one. Then, per registration:

  attacker  gasUsed of its registerImage, and the fee it paid less the refund it got back
  oracle    gasUsed of the oracle's transactions in the kind's blocks, each split evenly among the
            outcomes it posted, for the kind's registrations / N; CPU time of the daemon
            and its sandbox workers (the process tree, from /proc) over the kind, less the idle
            rate measured first and the honest images' own CPU (as measured calm); bytes the network
            gateway served (less the honest images', as measured calm)

ETH figures price gas at --gas-price-gwei for both sides (anvil's own base fee is near zero). The
oracle's net is its gas less the failure fee the registry keeps for the service. Honest images
go through the same accounting for comparison. Target, per hostile kind: the attacker pays at
least what the oracle spends in gas, and the failure fee covers the oracle's gas. Writes
bench/results/hostile.{json,md}; exits 1 when a target is missed.
"""

import argparse
import asyncio
import io
import json
import multiprocessing
import os
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from PIL import Image
from pydantic import SecretStr
from pyrage import x25519
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.logs import DISCARD

from bench.common import (
    RESULTS,
    chain_and_node,
    daemon_main,
    describe,
    finish,
    machine,
    random_checkpoint,
    synthetic_pngs,
)
from oracle.chain.anvil_accounts import dev_account
from oracle.chain.deploy import deploy_on_devnet
from oracle.chain.reasons import FailureReason
from oracle.chain.registry import Registry, hex32
from oracle.crypto.envelope import Binding, seal, seal_image
from oracle.crypto.keys import public_key
from oracle.dev.anvil import Anvil, dev_patient_identity
from oracle.dev.ipfs import IpfsNode
from oracle.ipfs import cid as cids
from oracle.ipfs.pinata import PinataClient
from oracle.settings import Settings
from tests.oracle.adversarial.hostile import Network, exponential, many_tiny_blocks, padded_header
from tests.oracle.adversarial.test_corpus import CORPUS, MANIFEST
from tests.support import tiny_sr_checkpoint

ARCHITECTURE = "mobilenet_v3_small"
ATTACKERS = (6, 7, 8, 9)
PATIENTS = (2, 3, 4, 5)
GWEI = 10**9
IDLE_SECONDS = 5.0
POLL = 0.1
CLASSIFIED = "CLASSIFIED"
HONEST = "honest image"
DEFAULT = b"\x00" * 32
HONEST_BESIDE = 8  # honest classifications sent with each newer hostile kind
P95_FACTOR = 3.0  # the honest p95 under attack, at most this times the calm p95

Entry = tuple[str, int, bytes]
"""A registration: its CID, the dev account that sends it, the model (DEFAULT: the classifier)."""


@dataclass
class Kind:
    name: str
    registrations: int
    outcome: str
    attacker_gas: float
    attacker_fee_kept_wei: float
    oracle_gas: float
    oracle_cpu_ms: float
    served_bytes: float
    seconds: float
    honest_p95_s: float | None = None
    """The honest classifications' p95 latency in this kind: the calm one, or beside the attack."""
    honest_outcome: str | None = None
    """What the honest classifications of this kind got (CLASSIFIED, or the bench has failed)."""

    def attacker_wei(self, gas_price: int) -> float:
        return self.attacker_gas * gas_price + self.attacker_fee_kept_wei

    def oracle_net_wei(self, gas_price: int) -> float:
        """The oracle's gas less what the registry keeps for the service (income is negative)."""
        return self.oracle_gas * gas_price - self.attacker_fee_kept_wei


def tree_cpu_seconds(root: int) -> float:
    """CPU time of `root` and every live descendant, plus what their reaped children used
    (a sandbox worker killed and replaced still counts)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        stats[int(stat.parent.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick)
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in stats.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(stats[pid][1] for pid in tree if pid in stats)


class Attack:
    def __init__(
        self,
        w3: Any,
        registry: Registry,
        pinata: PinataClient,
        network: Network,
        daemon_pid: int,
        fees: dict[bytes, int],
    ) -> None:
        self.w3, self.registry, self.pinata, self.network = w3, registry, pinata, network
        self.daemon_pid, self.fees = daemon_pid, fees
        self.idle_cpu_per_s = 0.0
        self.honest_cpu_ms = self.honest_served = 0.0  # per honest image, from the calm honest kind
        self.served = 0

    async def register(self, entries: Sequence[Entry]) -> dict[str, tuple[dict[str, Any], float]]:
        """registerImage(cid, model) from each account, each paying its model's fee, all sent
        before any receipt; by imageId, each receipt and when it was seen."""
        nonces = {
            a: await self.w3.eth.get_transaction_count(dev_account(a).address, "pending")
            for a in ATTACKERS + PATIENTS
        }
        hashes = []
        for cid, account, model in entries:
            signer = dev_account(account)
            tx = await self.registry.contract.functions.registerImage(cid, model).build_transaction(
                {"from": signer.address, "nonce": nonces[account], "value": self.fees[model], "gas": 200_000}
            )
            nonces[account] += 1
            hashes.append(await self.w3.eth.send_raw_transaction(signer.sign_transaction(tx).raw_transaction))
        receipts = {}
        for tx_hash in hashes:
            receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash)
            if receipt["status"] != 1:
                raise RuntimeError(f"a registration reverted: {tx_hash.hex()}")
            (event,) = self.registry.contract.events.ImageRegistered().process_receipt(receipt)
            receipts[hex32(event["args"]["imageId"])] = (receipt, time.monotonic())
        return receipts

    async def outcomes(self, ids: set[str], from_block: int, timeout: float) -> dict[str, tuple[str, float]]:
        """By imageId, its outcome and when it was first seen on chain."""
        events = self.registry.contract.events
        found: dict[str, tuple[str, float]] = {}
        deadline = time.monotonic() + timeout
        while not ids <= found.keys():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{len(ids - found.keys())} registrations without an outcome after {timeout} s"
                )
            head = await self.w3.eth.block_number
            for log in await events.ResultPosted.get_logs(from_block=from_block, to_block=head):
                found.setdefault(hex32(log["args"]["imageId"]), (CLASSIFIED, time.monotonic()))
            for log in await events.ClassificationFailed.get_logs(from_block=from_block, to_block=head):
                reason = FailureReason(log["args"]["reason"]).name
                found.setdefault(hex32(log["args"]["imageId"]), (reason, time.monotonic()))
            await asyncio.sleep(POLL)
        return found

    async def refunds(self, ids: set[str], from_block: int) -> int:
        refunded = await self.registry.contract.events.Refunded.get_logs(from_block=from_block)
        return sum(int(log["args"]["amount"]) for log in refunded if hex32(log["args"]["imageId"]) in ids)

    async def oracle_gas(self, first: int, last: int, ids: set[str]) -> float:
        """The oracle's gas for `ids`: each of its transactions split evenly among the outcomes it
        posted (one with none, among all of `ids`)."""
        oracle, events = self.registry.deployment.oracles[0], self.registry.contract.events
        gas, unattributed = 0.0, 0
        for number in range(first, last + 1):
            block = await self.w3.eth.get_block(number, full_transactions=True)
            for tx in block["transactions"]:
                if tx["from"] != oracle:
                    continue
                receipt = await self.w3.eth.get_transaction_receipt(tx["hash"])
                posted = [
                    hex32(log["args"]["imageId"])
                    for event in (events.ResultPosted(), events.ClassificationFailed())
                    for log in event.process_receipt(receipt, errors=DISCARD)
                ]
                if not posted:
                    unattributed += int(receipt["gasUsed"])
                    continue
                gas += int(receipt["gasUsed"]) * sum(i in ids for i in posted) / len(posted)
        return gas + unattributed

    async def idle(self) -> None:
        """The daemon's CPU rate with nothing to do (polling the chain), subtracted below."""
        before, start = tree_cpu_seconds(self.daemon_pid), time.monotonic()
        await asyncio.sleep(IDLE_SECONDS)
        self.idle_cpu_per_s = (tree_cpu_seconds(self.daemon_pid) - before) / (time.monotonic() - start)

    async def kind(
        self, name: str, entries: list[Entry], timeout: float, beside: Sequence[Entry] = ()
    ) -> Kind:
        """The kind's `entries`, with honest classifications `beside` them (sent first); figures
        per registration of the kind, the honest ones' latency apart."""
        first = await self.w3.eth.block_number + 1
        served, cpu, start = self.network.served_bytes, tree_cpu_seconds(self.daemon_pid), time.monotonic()
        receipts = await self.register([*beside, *entries])
        ids = set(receipts)
        found = await self.outcomes(ids, first, timeout)
        seconds = time.monotonic() - start
        cpu = tree_cpu_seconds(self.daemon_pid) - cpu - self.idle_cpu_per_s * seconds
        cpu -= len(beside) * self.honest_cpu_ms / 1000
        last = await self.w3.eth.block_number
        companions = set(list(receipts)[: len(beside)])
        kinds = ids - companions
        honest = ids if name == HONEST else companions
        n = len(entries)
        outcomes = sorted({found[i][0] for i in kinds})
        paid = sum(self.fees[model] for _, _, model in entries)
        kept = paid - await self.refunds(kinds, first)
        oracle_gas = await self.oracle_gas(first, last, kinds)
        latency = [found[i][1] - receipts[i][1] for i in honest]
        row = Kind(
            name=name,
            registrations=n,
            outcome=", ".join(outcomes),
            attacker_gas=sum(int(receipts[i][0]["gasUsed"]) for i in kinds) / n,
            attacker_fee_kept_wei=kept / n,
            oracle_gas=oracle_gas / n,
            oracle_cpu_ms=max(0.0, cpu) * 1000 / n,
            served_bytes=(self.network.served_bytes - served - len(beside) * self.honest_served) / n,
            seconds=round(seconds, 2),
            honest_p95_s=round(float(np.percentile(latency, 95)), 2) if latency else None,
            honest_outcome=", ".join(sorted({found[i][0] for i in honest})) if honest else None,
        )
        if name == HONEST:
            self.honest_cpu_ms, self.honest_served = row.oracle_cpu_ms, row.served_bytes
        print(f"{name}: {row.outcome} in {seconds:.1f} s", flush=True)
        return row


class CountingNetwork(Network):
    """The adversarial suite's network gateway, counting the bytes it serves."""

    served_bytes = 0

    async def handle(self, request: Any) -> Any:
        response = await super().handle(request)
        self.served_bytes += len(getattr(response, "body", b"") or b"")
        return response


async def measure(args: argparse.Namespace, work: Path, anvil: Anvil, ipfs: IpfsNode) -> list[Kind]:
    models = work / "models"
    card = random_checkpoint(ARCHITECTURE, models / ARCHITECTURE)
    sr_card = tiny_sr_checkpoint(models)
    oracle_key = x25519.Identity.generate()
    fee, sr_fee, failure_fee = (g * GWEI for g in (args.fee_gwei, args.sr_fee_gwei, args.failure_fee_gwei))
    deployment = deploy_on_devnet(
        anvil.url,
        work / "deployment.json",
        [card, sr_card],
        public_key(oracle_key),
        terms=(fee, failure_fee),
        model_terms={sr_card.name: (sr_fee, failure_fee)},
    )
    sr = sr_card.model_id
    n = args.per_kind
    pngs = synthetic_pngs(2 * n + 4 + 3 * HONEST_BESIDE, first_seed=50_000)
    companions = iter(pngs[2 * n + 4 :])
    w3: Any = AsyncWeb3(AsyncHTTPProvider(anvil.url))
    registry = Registry(w3, deployment)
    network = CountingNetwork(ipfs.url)
    network_url = await network.start()
    async with aiohttp.ClientSession() as http:
        pinata = PinataClient(http, ipfs.token, ipfs.url)
        recipients = await registry.recipients()

        def envelope(data: bytes, account: int, media_type: str | None = None) -> bytes:
            owner = dev_account(account).address
            patient = dev_patient_identity(account, deployment.chain_id, deployment.address)
            to = [*recipients, str(patient.to_public())]
            if media_type is None:  # a reply_to key, as the page names: what a 4x image is sealed to
                return seal_image(data, owner, deployment.chain_id, deployment.address, to, to[-1])
            binding = Binding.of(owner, deployment.chain_id, deployment.address, media_type, len(data))
            return seal(data, binding, to)

        async def sealed(data: bytes, account: int, media_type: str | None = None) -> str:
            return (await pinata.pin_file(envelope(data, account, media_type), "x.age", 1)).cid

        def attackers(count: int) -> list[int]:
            return [ATTACKERS[i % len(ATTACKERS)] for i in range(count)]

        async def honest(images: list[bytes]) -> list[Entry]:
            accounts = [PATIENTS[i % len(PATIENTS)] for i in range(len(images))]
            return [(await sealed(d, a), a, DEFAULT) for d, a in zip(images, accounts, strict=True)]

        async def beside() -> list[Entry]:
            return await honest([next(companions) for _ in range(HONEST_BESIDE)])

        def published(make: Callable[[], tuple[str, bytes]]) -> list[Entry]:
            out = []
            for account in attackers(n):
                cid, car = make()
                network.published[cid] = car
                out.append((cid, account, DEFAULT))
            return out

        def dag(honest_sizes: bool) -> Callable[[], tuple[str, bytes]]:
            def make() -> tuple[str, bytes]:
                d = exponential(30, honest_sizes)
                return str(d.root), d.car()

            return make

        async def poison() -> list[Entry]:
            names = sorted(MANIFEST)
            out = []
            for i, account in enumerate(attackers(n)):
                name = names[i % len(names)]
                kind = "image/tiff" if "tif" in name else "image/jpeg" if "jpg" in name else "image/png"
                out.append((await sealed((CORPUS / name).read_bytes(), account, kind), account, DEFAULT))
            return out

        async def long_headers() -> list[Entry]:
            """Honest envelopes, their age headers padded to ~80 kB (past the sandbox's 30 s in
            pyrage before the header was measured first)."""
            out = []
            for i, account in enumerate(attackers(n)):
                padded = padded_header(envelope(pngs[i], account), 80_000 // 506, body=500)
                out.append(((await pinata.pin_file(padded, "x.age", 1)).cid, account, DEFAULT))
            return out

        async def upscaling(width: int, height: int, flat: bool) -> list[Entry]:
            """Super-resolution requests at its fee: a flat picture (an infinite PSNR before the
            measures were capped), or noise of the card's largest size."""
            out = []
            for i, account in enumerate(attackers(n)):
                rng = np.random.default_rng(i)
                pixels = (
                    np.full((height, width, 3), 90 + i, np.uint8)
                    if flat
                    else rng.integers(0, 256, (height, width, 3))
                )
                data = io.BytesIO()
                Image.fromarray(pixels.astype(np.uint8)).save(data, format="PNG")
                out.append((await sealed(data.getvalue(), account), account, sr))
            return out

        async def garbage() -> list[Entry]:
            return [
                ((await pinata.pin_file(os.urandom(4096), "x.age", 1)).cid, a, DEFAULT) for a in attackers(n)
            ]

        def silent() -> list[Entry]:
            out = []
            for account in attackers(n):
                cid = cids.raw_cid(os.urandom(64))
                network.unanswered.add(cid)
                out.append((cid, account, DEFAULT))
            return out

        side = int(sr_card.input.max_pixels**0.5)
        print("preparing registrations", flush=True)
        plan: list[tuple[str, list[Entry], list[Entry]]] = [
            (HONEST, await honest(pngs[4 : 4 + n]), []),
            ("exponential DAG, depth 30", published(dag(True)), []),
            ("exponential DAG, sizes lie", published(dag(False)), []),
            ("CAR of 100k tiny blocks", published(lambda: many_tiny_blocks(100_000)), []),
            ("poison image (corpus)", await poison(), []),
            ("garbage envelope", await garbage(), []),
            ("age header of 80 kB", await long_headers(), await beside()),
            (
                "flat 1-pixel-high super-resolution input",
                await upscaling(sr_card.input.max_side, 1, True),
                await beside(),
            ),
            (
                f"super-resolution flood ({side}x{side} noise)",
                await upscaling(side, side, False),
                await beside(),
            ),
            (f"never answered (grace {args.grace:.0f} s)", silent(), []),
        ]
        warm = await honest(pngs[:4])
        settings = Settings(
            data_dir=work,
            rpc_urls=[anvil.url],
            deployment=work / "deployment.json",
            gateways=[network_url, ipfs.url],
            model_dir=models,
            ipfs_port=ipfs.port,
            ipfs_token=ipfs.token,
            device="cpu",
            metrics_port=0,
            oracle_age_key=SecretStr(str(oracle_key)),
        ).tuned(
            confirmations=0,
            poll_interval=0.2,
            fetch_timeout=2.0,
            fetch_deadline=5.0,
            unreachable_grace=args.grace,
        )
        spawn = multiprocessing.get_context("spawn")
        daemon = spawn.Process(target=daemon_main, args=(settings,), name="oracle")
        daemon.start()
        assert daemon.pid is not None
        attack = Attack(w3, registry, pinata, network, daemon.pid, {DEFAULT: fee, sr: sr_fee})
        try:
            await attack.kind("warm-up", warm, 300)
            await attack.idle()
            rows = [
                await attack.kind(name, entries, args.grace + 300, honest) for name, entries, honest in plan
            ]
        finally:
            if daemon.is_alive():
                os.kill(daemon.pid, signal.SIGTERM)
            daemon.join(60)
            await network.close()
            await w3.provider.disconnect()
    if daemon.exitcode != 0:
        raise RuntimeError(f"the daemon exited with code {daemon.exitcode}")
    print(f"daemon idle CPU: {attack.idle_cpu_per_s * 1000:.1f} ms/s (subtracted)")
    return rows


def table(rows: list[Kind], gas_price: int) -> str:
    lines = [
        "| registration | outcome | registrant's gas | registrant pays (ETH) | oracle's gas "
        "| oracle's net (ETH) | oracle's CPU (ms) | served (bytes) | registrant pays / oracle's gas "
        "| honest p95 (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r.attacker_wei(gas_price) / (r.oracle_gas * gas_price) if r.oracle_gas else float("inf")
        p95 = "" if r.honest_p95_s is None else f"{r.honest_p95_s:.2f}"
        lines.append(
            f"| {r.name} | {r.outcome} | {r.attacker_gas:,.0f} | {r.attacker_wei(gas_price) / 1e18:.6f} "
            f"| {r.oracle_gas:,.0f} | {r.oracle_net_wei(gas_price) / 1e18:+.6f} | {r.oracle_cpu_ms:,.1f} "
            f"| {r.served_bytes:,.0f} | {ratio:.2f} | {p95} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-kind", type=int, default=32, help="registrations of each kind")
    parser.add_argument(
        "--fee-gwei", type=int, default=2_000_000, help="classifier's fee (default 0.002 ETH)"
    )
    parser.add_argument(
        "--sr-fee-gwei", type=int, default=6_000_000, help="super-resolution model's fee (default 0.006 ETH)"
    )
    parser.add_argument(
        "--failure-fee-gwei", type=int, default=1_100_000, help="failure fee (default 0.0011 ETH)"
    )
    parser.add_argument("--gas-price-gwei", type=float, default=20.0, help="gas price for ETH figures")
    parser.add_argument("--grace", type=float, default=30.0, help="unreachable_grace for the daemon")
    args = parser.parse_args()
    gas_price = int(args.gas_price_gwei * GWEI)
    info = machine()
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        work = Path(tmp)
        with chain_and_node(work) as (anvil, ipfs):
            rows = asyncio.run(measure(args, work, anvil, ipfs))
    info = finish(info)
    hostile = [r for r in rows if r.outcome != CLASSIFIED]
    calm = next(r.honest_p95_s for r in rows if r.name == HONEST)
    assert calm is not None
    beside = [r for r in rows if r.name != HONEST and r.honest_p95_s is not None]
    targets = [
        (
            "every honest classification, calm and beside each newer kind: CLASSIFIED",
            all(r.honest_outcome == CLASSIFIED for r in rows if r.honest_outcome is not None),
        ),
        (
            "every hostile kind: the attacker pays at least the oracle's gas",
            all(r.attacker_wei(gas_price) >= r.oracle_gas * gas_price for r in hostile),
        ),
        (
            "every hostile kind: the failure fee covers the oracle's gas",
            all(r.oracle_net_wei(gas_price) <= 0 for r in hostile),
        ),
        (
            f"honest classifications beside the newer kinds: p95 at most {P95_FACTOR:g}x "
            f"the calm {calm:.2f} s",
            all(r.honest_p95_s is not None and r.honest_p95_s <= P95_FACTOR * calm for r in beside),
        ),
    ]
    report = table(rows, gas_price)
    print(report)
    for name, met in targets:
        print(f"{'met' if met else 'MISSED'}: {name}")
    method = (
        f"{args.per_kind} registrations per kind, sent at once from anvil's accounts 6-9 (honest: 2-5; "
        f"{HONEST_BESIDE} honest classifications sent with each kind that shows an honest p95), "
        f"classifier's fee {args.fee_gwei * GWEI / 1e18:g} ETH, "
        f"super-resolution model's fee {args.sr_fee_gwei * GWEI / 1e18:g} ETH (a two-step SRResNet), "
        f"failure fee {args.failure_fee_gwei * GWEI / 1e18:g} ETH, "
        f"gas priced at {args.gas_price_gwei:g} gwei for both sides. "
        "Oracle: `run_daemon` in its own process, "
        f"default tuning but fetch_timeout 2 s, fetch_deadline 5 s, unreachable_grace {args.grace:g} s; "
        f"a random-weight {ARCHITECTURE} checkpoint; gateways: the network gateway of the adversarial suite, "
        "then the node. Oracle CPU: the daemon's process tree over the kind, less its idle rate."
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hostile.json").write_text(
        json.dumps(
            {
                "machine": info,
                "method": method,
                "gas_price_gwei": args.gas_price_gwei,
                "kinds": [asdict(r) for r in rows],
                "targets": dict(targets),
            },
            indent=2,
        )
        + "\n"
    )
    (RESULTS / "hostile.md").write_text(
        "# Hostile registrations: the oracle's cost against the attacker's\n\n"
        f"{describe(info)}\n\n{method}\n\n{report}\n\n"
        + "\n".join(f"- {'met' if met else '**MISSED**'}: {name}" for name, met in targets)
        + "\n"
    )
    return 0 if all(met for _, met in targets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
