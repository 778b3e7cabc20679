"""The oracle daemon under a burst of registrations, on real parts: pipelined against sequential.

    .venv/bin/python -m bench.oracle [--images 500] [--sequential-images 100]

Real anvil, the local IPFS node, the ImageRegistry deployed as the tests deploy it, a
MobileNetV3-small checkpoint with random weights (the real checkpoint format: throughput does not
depend on the weights, and nothing is downloaded) and the real daemon (`oracle.daemon.app.run_daemon`
with the tests' settings, in a process of its own so that its CPU time and peak RSS are its own).

anvil automines: every transaction is mined in its own block the moment it arrives, so block
times never pace the oracle and what is measured is the oracle. confirmations = 0 (with automine a
deeper confirmation would wait for some later transaction).

For each mode, on a fresh deployment with fresh images: seal distinct synthetic 700x460 PNGs as
the page does (an age envelope to the oracle's key and the patient's, bound to the patient who
registers it), upload the envelopes, start the daemon, warm it up (WARMUP images, not counted),
then send every registration at once (signed beforehand by anvil's test accounts 2-9 with
explicit nonces, one JSON-RPC batch) and wait until every result is on chain.

  pipelined   the daemon's default tuning, every registration sent at once
  sequential  batch 1 everywhere (fetch_concurrency=1, classify_batch=1, submit_batch=1, no
              batching waits) and one job at a time: each registration is sent when the previous
              result is on chain (the bench polls for it every STEP_POLL s, which counts against the
              sequential mode); min(N, 100) images unless --sequential-images says otherwise

Throughput is images / (last result's block - first registration's block) in wall-clock time, a
thread recording when each block number first appears (polled every 10 ms). Latency is per image,
registration block -> result block, in wall clock and, as a cross-check, in block timestamps (whole
seconds). Then the raw forward pass of the same checkpoint at the daemon's classify batch, in the
same run. Targets: pipelined >= 3x sequential; end-to-end >= 60 % of that raw forward throughput;
0 lost; 0 duplicated. Writes bench/results/oracle.{json,md,png}; exits 1 when a target is missed.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import torch
from pydantic import SecretStr
from pyrage import x25519
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from web3 import AsyncHTTPProvider, AsyncWeb3, HTTPProvider, Web3

from bench.common import (
    RESULTS,
    chain_and_node,
    daemon_main,
    describe,
    finish,
    machine,
    peak_rss_mib,
    random_checkpoint,
    synthetic_pngs,
    timed,
)
from bench.inference import WARMUP_SECONDS, raw_forward
from oracle.chain.anvil_accounts import dev_account
from oracle.chain.deploy import deploy_on_devnet
from oracle.chain.registry import Registry, hex32, image_id_for
from oracle.crypto.envelope import open_envelope, seal_image
from oracle.crypto.keys import public_key
from oracle.dev.anvil import dev_patient_identity
from oracle.imaging import decode
from oracle.ipfs.pinata import PinataClient
from oracle.ml import checkpoint
from oracle.ml.inference import Predictor
from oracle.settings import Settings, Tuning

ARCHITECTURE = "mobilenet_v3_small"
PATIENTS = tuple(range(2, 10))  # anvil's test accounts: 0 deploys, 1 is the oracle
WARMUP = 16
SEQUENTIAL: dict[str, Any] = {
    "fetch_concurrency": 1,
    "classify_batch": 1,
    "classify_wait": 0.0,
    "submit_batch": 1,
    "submit_wait": 0.0,
}
TARGET_SPEEDUP = 3.0
TARGET_OF_RAW = 0.60
REGISTER_GAS = 200_000
FORWARD_SECONDS = 5.0
OUTCOME_POLL = 0.25
STEP_POLL = 0.01
BLOCK_POLL = 0.01
ZERO = b"\x00" * 32
PROCESSES = {"anvil": "anvil", "node": "ipfs node"}  # children by command name


class BlockClock(threading.Thread):
    """When each block number was first seen, polled in a thread of its own so that the bench's
    event loop (busy sending a burst) cannot delay the reading."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.w3 = Web3(HTTPProvider(url))
        self.last = self.w3.eth.block_number
        self.seen: dict[int, float] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        while True:
            halted = self.halt.wait(BLOCK_POLL)
            head = self.w3.eth.block_number
            now = time.time()
            for number in range(self.last + 1, head + 1):
                self.seen[number] = now
            self.last = max(self.last, head)
            if halted:
                return


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU time (user + system) so far of this process and its children: pid -> (name, seconds)."""
    tick = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        pid, ppid = int(stat.parent.name), int(rest[1])
        if me in (pid, ppid):
            found[pid] = (name, (int(rest[11]) + int(rest[12])) / tick)
    return found


@dataclass
class Run:
    mode: str
    images: int
    tuning: dict[str, Any]
    seconds: float
    images_per_s: float
    latency_wall_s: list[float]
    latency_block_s: list[int]
    oracle_transactions: int
    oracle_gas: int
    daemon_peak_rss_mib: float
    cpu_s_per_image: dict[str, float]
    failed: int
    lost: int
    duplicated: int
    finished_at_s: list[float]

    @property
    def gas_per_image(self) -> float:
        return self.oracle_gas / self.images


@dataclass(frozen=True)
class Upload:
    cid: str
    patient: int
    image_id: str


class Bench:
    """One mode on one fresh deployment: upload, daemon up and warm, burst, wait, account."""

    def __init__(
        self,
        rpc: str,
        ipfs: Any,
        models: Path,
        work: Path,
        deployment: Any,
        oracle_key: x25519.Identity,
        stores: dict[str, str] | None = None,
        workers: int = 0,
        block_time: int = 0,
        alongside: Callable[[Settings, asyncio.Event], Awaitable[None]] | None = None,
    ) -> None:
        """`stores` (database_url, redis_url): the distributed mode, one coordinator and `workers`
        worker processes; else one process in the embedded mode.
        `block_time` > 0: during the burst anvil mines a block every `block_time` seconds, as a
        real chain does, instead of one block per transaction. `alongside` runs in the bench's
        event loop while the daemons do (a stand-in for the workers, say)."""
        self.rpc, self.ipfs, self.models, self.work = rpc, ipfs, models, work
        self.block_time, self.alongside = block_time, alongside
        self.stores = stores or {}
        self.roles = {"coordinator": "coordinator"} if self.stores else {"daemon": "all"}
        self.roles |= {f"worker-{i + 1}": "worker" for i in range(workers)}
        self.w3: Any = AsyncWeb3(AsyncHTTPProvider(rpc))
        self.registry = Registry(self.w3, deployment)
        self.oracle = deployment.oracles[0]
        self.oracle_key = oracle_key

    async def upload(self, pngs: list[bytes]) -> list[Upload]:
        """Each image sealed for the patient account that will register it, then pinned."""
        deployment = self.registry.deployment
        recipients = await self.registry.recipients()
        keys = {i: dev_patient_identity(i, deployment.chain_id, deployment.address) for i in PATIENTS}
        async with aiohttp.ClientSession() as http:
            pinata = PinataClient(http, self.ipfs.token, self.ipfs.url)
            limit = asyncio.Semaphore(8)

            async def one(index: int, data: bytes) -> Upload:
                patient = PATIENTS[index % len(PATIENTS)]
                owner = dev_account(patient).address
                sealed = seal_image(
                    data,
                    owner,
                    deployment.chain_id,
                    deployment.address,
                    [*recipients, str(keys[patient].to_public())],
                )
                async with limit:
                    cid = (await pinata.pin_file(sealed, f"bench-{index}.age", 1)).cid
                return Upload(cid, patient, image_id_for(owner, cid))

            return list(await asyncio.gather(*(one(i, d) for i, d in enumerate(pngs))))

    async def signed(self, uploads: list[Upload]) -> list[bytes]:
        """registerImage(cid, default model) for each, signed by the patient it was sealed for."""
        patients = {i: dev_account(i) for i in PATIENTS}
        nonces = {
            i: await self.w3.eth.get_transaction_count(p.address, "pending") for i, p in patients.items()
        }
        base = int((await self.w3.eth.get_block("latest"))["baseFeePerGas"])
        priority = int(await self.w3.eth.max_priority_fee)
        raw = []
        for upload in uploads:
            index, cid = upload.patient, upload.cid
            tx = {
                "type": 2,
                "chainId": self.registry.deployment.chain_id,
                "to": self.registry.deployment.address,
                "data": self.registry.contract.encode_abi("registerImage", [cid, ZERO]),
                "value": 0,
                "gas": REGISTER_GAS,
                "nonce": nonces[index],
                "maxFeePerGas": 2 * base + priority,
                "maxPriorityFeePerGas": priority,
            }
            nonces[index] += 1
            raw.append(bytes(patients[index].sign_transaction(tx).raw_transaction))
        return raw

    async def send(self, raw: list[bytes]) -> None:
        """One JSON-RPC batch of eth_sendRawTransaction (web3.py refuses sends in its batches)."""
        body = [
            {"jsonrpc": "2.0", "id": k, "method": "eth_sendRawTransaction", "params": ["0x" + tx.hex()]}
            for k, tx in enumerate(raw)
        ]
        async with aiohttp.ClientSession() as http, http.post(self.rpc, json=body) as response:
            answers = await response.json()
        refused = [a for a in answers if "result" not in a]
        if len(answers) != len(raw) or refused:
            raise RuntimeError(f"registrations refused: {refused[:3]}")

    async def outcomes(
        self, wanted: set[str], from_block: int, timeout: float, poll: float = OUTCOME_POLL
    ) -> dict[str, list[int]]:
        """imageId -> blocks of its ResultPosted / ClassificationFailed events, polled until every
        wanted image has one or `timeout` passes."""
        found: dict[str, list[int]] = {}
        events = self.registry.contract.events
        deadline = time.monotonic() + timeout
        while True:
            head = await self.w3.eth.block_number
            if head >= from_block:
                for event in (events.ResultPosted, events.ClassificationFailed):
                    for log in await event.get_logs(from_block=from_block, to_block=head):
                        found.setdefault(hex32(log["args"]["imageId"]), []).append(int(log["blockNumber"]))
                from_block = head + 1
            if wanted <= found.keys() or time.monotonic() > deadline:
                return found
            await asyncio.sleep(poll)

    async def failures(self, from_block: int) -> int:
        logs = await self.registry.contract.events.ClassificationFailed.get_logs(from_block=from_block)
        return len(logs)

    async def jobs_confirmed(self, database: str, wanted: set[str], timeout: float) -> set[str]:
        """The daemon's own record: the wanted images whose job is confirmed, once all are or at timeout."""
        engine = create_async_engine(database)
        deadline = time.monotonic() + timeout
        query = text("SELECT image_id FROM jobs WHERE state = 'confirmed'")
        try:
            while True:
                async with engine.connect() as connection:
                    confirmed = set((await connection.scalars(query)).all())
                if wanted <= confirmed or time.monotonic() > deadline:
                    return confirmed & wanted
                await asyncio.sleep(OUTCOME_POLL)
        finally:
            await engine.dispose()

    async def oracle_transactions(self, first: int, last: int) -> tuple[int, int, Counter[str]]:
        """The oracle's transactions in blocks first..last: count, gas, and how often each imageId
        was sent (in postResult(s) or reportFailure)."""
        count, gas, sent = 0, 0, Counter[str]()
        for number in range(first, last + 1):
            block = await self.w3.eth.get_block(number, full_transactions=True)
            for tx in block["transactions"]:
                if tx["from"] != self.oracle:
                    continue
                count += 1
                gas += int((await self.w3.eth.get_transaction_receipt(tx["hash"]))["gasUsed"])
                _, params = self.registry.contract.decode_function_input(tx["input"])
                ids = params.get("imageIds") or [params["imageId"]]
                sent.update(hex32(i) for i in ids)
        return count, gas, sent

    async def timestamps(self, numbers: set[int]) -> dict[int, int]:
        return {n: int((await self.w3.eth.get_block(n))["timestamp"]) for n in sorted(numbers)}

    async def run(
        self, mode: str, tuning: dict[str, Any], pngs: list[bytes], timeout: float, one_at_a_time: bool
    ) -> Run:
        try:
            return await self._measure(mode, tuning, pngs, timeout, one_at_a_time)
        finally:
            await self.w3.provider.disconnect()

    async def _measure(
        self, mode: str, tuning: dict[str, Any], pngs: list[bytes], timeout: float, one_at_a_time: bool
    ) -> Run:
        uploads = await self.upload(pngs)
        assert len({u.cid for u in uploads}) == len(uploads), "every image must be distinct"
        warm, measured = uploads[:WARMUP], uploads[WARMUP:]
        ids = {u.image_id for u in measured}
        settings = Settings(
            data_dir=self.work,
            rpc_urls=[self.rpc],
            deployment=self.work / "deployment.json",
            gateways=[self.ipfs.url],
            model_dir=self.models,
            device="cpu",
            metrics_port=0,
            oracle_age_key=SecretStr(str(self.oracle_key)),
            **self.stores,
        ).tuned(confirmations=0, poll_interval=0.2, **tuning)
        spawn = multiprocessing.get_context("spawn")
        daemons = {
            name: spawn.Process(target=daemon_main, args=(settings, role), name=name)
            for name, role in self.roles.items()
        }
        for daemon in daemons.values():
            daemon.start()
        halt = asyncio.Event()
        beside = asyncio.create_task(self.alongside(settings, halt)) if self.alongside else None
        if beside is not None:  # a stand-in that fails would leave the burst to time out
            beside.add_done_callback(lambda task: task.cancelled() or task.result())
        try:
            start = await self.w3.eth.block_number + 1
            await self.send(await self.signed(warm))
            warm_ids = {u.image_id for u in warm}
            if not warm_ids <= (await self.outcomes(warm_ids, start, timeout)).keys():
                raise RuntimeError(f"{mode}: the daemon did not settle its warm-up images; is it running?")

            raw = await self.signed(measured)
            if self.block_time:
                await self.w3.provider.make_request("evm_setIntervalMining", [self.block_time])
            clock = BlockClock(self.rpc)
            first = clock.last + 1
            clock.start()
            cpu_before = cpu_seconds()
            if one_at_a_time:
                found: dict[str, list[int]] = {}
                for tx, upload in zip(raw, measured, strict=True):
                    since = await self.w3.eth.block_number + 1
                    await self.send([tx])
                    found |= await self.outcomes({upload.image_id}, since, timeout, STEP_POLL)
            else:
                await self.send(raw)
                found = await self.outcomes(ids, first, timeout)
            cpu_after = cpu_seconds()
            confirmed = await self.jobs_confirmed(settings.database, ids, 30)
            clock.halt.set()
            clock.join()
            peak = {name: peak_rss_mib(d.pid) for name, d in daemons.items() if d.pid is not None}
        finally:
            if self.block_time:
                await self.w3.provider.make_request("evm_setAutomine", [True])
            halt.set()
            if beside is not None:
                await beside
            for daemon in daemons.values():
                if daemon.pid is not None and daemon.is_alive():
                    os.kill(daemon.pid, signal.SIGTERM)
            for daemon in daemons.values():
                daemon.join(60)
        exits = {name: d.exitcode for name, d in daemons.items() if d.exitcode != 0}
        if exits:
            raise RuntimeError(f"{mode}: daemons exited with codes {exits}")

        registered = {
            hex32(log["args"]["imageId"]): int(log["blockNumber"])
            for log in await self.registry.contract.events.ImageRegistered.get_logs(from_block=first)
        }
        settled = {i: min(blocks) for i, blocks in found.items() if i in ids}
        last = await self.w3.eth.block_number
        transactions, gas, sent = await self.oracle_transactions(first, last)
        stamps = await self.timestamps({*registered.values(), *settled.values()})
        seen = clock.seen
        begin = min(seen[registered[i]] for i in ids)
        end = max(seen[b] for b in settled.values())
        lost = (ids - settled.keys()) | (ids - confirmed)
        duplicated = {i for i in ids if len(found.get(i, ())) > 1 or sent[i] > 1}
        labels: dict[int | None, str] = {d.pid: name for name, d in daemons.items()} | {os.getpid(): "bench"}
        labels |= {pid: PROCESSES[name] for pid, (name, _) in cpu_after.items() if name in PROCESSES}
        cpu = {
            labels[pid]: (seconds - cpu_before.get(pid, (name, 0.0))[1]) / len(ids)
            for pid, (name, seconds) in cpu_after.items()
            if pid in labels
        }
        return Run(
            mode=mode,
            images=len(ids),
            tuning=tuning,
            seconds=round(end - begin, 3),
            images_per_s=round(len(settled) / (end - begin), 2),
            latency_wall_s=sorted(round(seen[b] - seen[registered[i]], 3) for i, b in settled.items()),
            latency_block_s=sorted(stamps[b] - stamps[registered[i]] for i, b in settled.items()),
            oracle_transactions=transactions,
            oracle_gas=gas,
            daemon_peak_rss_mib=round(max(peak.values())),
            cpu_s_per_image={k: round(v, 4) for k, v in sorted(cpu.items())},
            failed=await self.failures(first),
            lost=len(lost),
            duplicated=len(duplicated),
            finished_at_s=sorted(round(seen[b] - begin, 3) for b in settled.values()),
        )


def opened_path(predictor: Predictor, pngs: list[bytes]) -> Callable[[], object]:
    """The daemon's code from envelope bytes to probabilities: open (decrypt), decode, preprocess,
    forward."""
    key = x25519.Identity.generate()
    owner, registry = dev_account(PATIENTS[0]).address, dev_account(0).address
    sealed = [seal_image(data, owner, 1, registry, [str(key.to_public())]) for data in pngs]
    return lambda: predictor.predict([decode(open_envelope(e, [key]).image) for e in sealed])


def forward_throughput(models: Path, pngs: list[bytes], batch: int, full: bool = False) -> float:
    """Images/s of MobileNetV3-small's forward pass alone at `batch` on preprocessed tensors (torch's
    default threads), or (`full`) of the oracle's open + decode + preprocess + forward on one core."""
    predictor = Predictor(checkpoint.load(models, "cpu"), "cpu")
    step = (opened_path if full else raw_forward)(predictor, pngs[:batch])
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if full else threads)
    try:
        return timed(step, batch, FORWARD_SECONDS, 5, WARMUP_SECONDS).images_per_s
    finally:
        torch.set_num_threads(threads)


def percentiles(values: list[float] | list[int]) -> str:
    p50, p95 = np.percentile(values, [50, 95])
    return f"{p50:.2f} / {p95:.2f} / {max(values):.2f}"


def table(runs: list[Run]) -> str:
    lines = [
        "| mode | images | seconds | images/s | latency p50 / p95 / max, wall s "
        "| latency p50 / p95 / max, block timestamps s | oracle txs | gas / image | daemon peak RSS MiB "
        "| CPU s / image | failed | lost | duplicated |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in runs:
        cpu = ", ".join(f"{k} {v:.3f}" for k, v in r.cpu_s_per_image.items())
        lines.append(
            f"| {r.mode} | {r.images} | {r.seconds:.1f} | {r.images_per_s:.1f} "
            f"| {percentiles(r.latency_wall_s)} | {percentiles(r.latency_block_s)} "
            f"| {r.oracle_transactions} | {r.gas_per_image:,.0f} | {r.daemon_peak_rss_mib:,.0f} "
            f"| {cpu} | {r.failed} | {r.lost} | {r.duplicated} |"
        )
    return "\n".join(lines)


def plot(runs: list[Run], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (progress, latency) = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in runs:
        progress.step(r.finished_at_s, np.arange(1, len(r.finished_at_s) + 1), where="post", label=r.mode)
        latency.hist(r.latency_wall_s, bins=40, alpha=0.6, label=r.mode)
    progress.set(
        xlabel="seconds since the first registration's block",
        ylabel="results on chain",
        title="Results on chain over time",
    )
    latency.set(
        xlabel="registration block -> result block, wall-clock s",
        ylabel="images",
        title="Latency (burst: queueing dominates)",
    )
    for axes in (progress, latency):
        axes.legend()
        axes.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=500, help="registrations in the pipelined burst")
    parser.add_argument(
        "--sequential-images",
        type=int,
        default=None,
        help="registrations in the sequential run (min(N, 100))",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for a burst to settle")
    args = parser.parse_args()
    sequential_images = args.sequential_images or min(args.images, 100)

    info = machine()
    classify_batch = Tuning().classify_batch
    inference_threads = Settings.model_fields["inference_threads"].get_default(call_default_factory=True)
    total = WARMUP + args.images + WARMUP + sequential_images
    print(f"generating {total} synthetic PNGs", flush=True)
    pngs = synthetic_pngs(total, first_seed=10_000)
    with tempfile.TemporaryDirectory(prefix="bench-oracle-") as tmp:
        work = Path(tmp)
        models = work / "models"
        card = random_checkpoint(ARCHITECTURE, models / ARCHITECTURE)
        with chain_and_node(work) as (anvil, ipfs):

            def run(mode: str, images: list[bytes], tuning: dict[str, Any], one_at_a_time: bool) -> Run:
                oracle_key = x25519.Identity.generate()
                deployment = deploy_on_devnet(
                    anvil.url, work / mode / "deployment.json", [card], public_key(oracle_key)
                )
                print(
                    f"{mode}: {len(images) - WARMUP} images (+{WARMUP} warm-up), tuning {tuning}", flush=True
                )
                bench = Bench(anvil.url, ipfs, models, work / mode, deployment, oracle_key)
                result = asyncio.run(bench.run(mode, tuning, images, args.timeout, one_at_a_time))
                print(table([result]).splitlines()[-1], flush=True)
                return result

            # The raw forward pass just before and just after the pipelined burst: the CPU is shared.
            raw_before = forward_throughput(models / ARCHITECTURE, pngs, classify_batch)
            pipelined = run("pipelined", pngs[: WARMUP + args.images], {}, one_at_a_time=False)
            raw_after = forward_throughput(models / ARCHITECTURE, pngs, classify_batch)
            sequential = run("sequential", pngs[WARMUP + args.images :], SEQUENTIAL, one_at_a_time=True)
        one_core = forward_throughput(models / ARCHITECTURE, pngs, classify_batch, full=True)
    info = finish(info)

    runs = [pipelined, sequential]
    raw = (raw_before + raw_after) / 2
    speedup = pipelined.images_per_s / sequential.images_per_s
    of_raw = pipelined.images_per_s / raw
    # Every core decoding and classifying, nothing else: no chain, no IPFS, no bookkeeping.
    ceiling = info["cores"] * one_core
    out_of_reach = (
        ", so the 60 % target is out of reach on this machine whatever the daemon does"
        if ceiling / raw < TARGET_OF_RAW
        else ""
    )
    targets = [
        ("pipelined >= 3x sequential throughput", f"{speedup:.2f}x", speedup >= TARGET_SPEEDUP),
        (
            f"end-to-end >= 60 % of raw forward ({ARCHITECTURE}, CPU, batch {classify_batch})",
            f"{of_raw:.1%} ({pipelined.images_per_s:.1f} of {raw:.1f} images/s)",
            of_raw >= TARGET_OF_RAW,
        ),
        ("0 lost", str(sum(r.lost for r in runs)), all(r.lost == 0 for r in runs)),
        ("0 duplicated", str(sum(r.duplicated for r in runs)), all(r.duplicated == 0 for r in runs)),
    ]
    fewer = f", on {sequential_images} images (fewer, to keep the run short)"
    method = (
        "anvil automines (one block per transaction, as it arrives); confirmations 0; the daemon "
        f"runs `run_daemon` in its own process with a random-weight {ARCHITECTURE} checkpoint "
        f"(inference on {inference_threads} torch thread(s), its default: half the cores). "
        f"Each mode: fresh deployment and fresh images, {WARMUP} warm-up images first (not counted), "
        "then the registrations: pipelined, every one sent at once (pre-signed, one JSON-RPC batch); "
        "sequential, one at a time, each sent when the previous result is on chain (the bench polls "
        f"every {STEP_POLL * 1000:.0f} ms). Seconds and images/s: "
        "first registration's block to last result's block, wall clock (block numbers polled every "
        f"{BLOCK_POLL * 1000:.0f} ms). Latency: registration block -> result block per image, wall "
        "clock and block timestamps (whole seconds). Sequential: "
        f"{', '.join(f'{k}={v}' for k, v in SEQUENTIAL.items())}"
        f"{'' if sequential_images == args.images else fewer}"
        ". CPU s / image: CPU time of each process during the burst / images. "
        f"Raw forward: the model alone at batch {classify_batch} on preprocessed tensors (inference_mode, "
        f"timed >= {FORWARD_SECONDS:.0f} s after warm-up, no daemon running), the mean of "
        f"{raw_before:.1f} images/s just before and {raw_after:.1f} just after the pipelined burst. "
        "Ceiling: the oracle's open + decode + preprocess + forward (`open_envelope`, `decode`, "
        f"`Predictor.predict`) on one core, {one_core:.1f} images/s, times {info['cores']} cores = "
        f"{ceiling:.1f} images/s: what end-to-end could reach with every core decoding and "
        "classifying and nothing else (no chain, no IPFS, no bookkeeping)."
    )
    summary = "\n".join(
        ["| target | measured | met |", "|---|---|:---:|"]
        + [f"| {name} | {value} | {'yes' if met else '**NO**'} |" for name, value, met in targets]
    )
    RESULTS.mkdir(exist_ok=True)
    plot(runs, RESULTS / "oracle.png")
    (RESULTS / "oracle.json").write_text(
        json.dumps(
            {
                "machine": info,
                "method": method,
                "raw_forward_images_per_s": {"before": round(raw_before, 1), "after": round(raw_after, 1)},
                "one_core_full_path_images_per_s": round(one_core, 1),
                "ceiling_images_per_s": round(ceiling, 1),
                "ceiling_over_raw_forward": round(ceiling / raw, 4),
                "classify_batch": classify_batch,
                "pipelined_over_sequential": round(speedup, 3),
                "end_to_end_over_raw_forward": round(of_raw, 4),
                "targets": [{"target": n, "measured": v, "met": m} for n, v, m in targets],
                "runs": [asdict(r) | {"gas_per_image": round(r.gas_per_image)} for r in runs],
            },
            indent=2,
        )
        + "\n"
    )
    report = (
        f"# Oracle under a burst\n\n{describe(info)}\n\n{method}\n\n{table(runs)}\n\n"
        f"Pipelined / sequential throughput: {speedup:.2f}x. Raw forward ({ARCHITECTURE}, CPU, batch "
        f"{classify_batch}): {raw:.1f} images/s; end-to-end is {of_raw:.1%} of it. The ceiling "
        f"(open + decode + preprocess + forward on every core, nothing else) is {ceiling / raw:.1%} of it"
        f"{out_of_reach}; end-to-end reaches {pipelined.images_per_s / ceiling:.0%} of the ceiling."
        f"\n\n{summary}\n\n"
        "![results over time and latency](oracle.png)\n"
    )
    (RESULTS / "oracle.md").write_text(report)
    print(f"\n{report}")
    missed = [name for name, _, met in targets if not met]
    if missed:
        print(f"targets missed: {missed}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
