"""The distributed mode under a burst: 1, 2 and 4 workers behind one coordinator, then the
coordinator alone, same run.

    .venv/bin/python -m bench.scale [--images 200] [--workers 1 2 4] [--capacity-images 1500]
                                    [--block-time 1]

Real anvil, the local IPFS node, PostgreSQL and redis-server from Debian's packages (started here
in a temp folder), the registry deployed afresh for each run, and the real daemon:
`histochain oracle run --role coordinator` and `--role worker` as processes of their own (the
bench.oracle harness, `Bench`). Each run gets a fresh database, an empty Redis, fresh images,
WARMUP warm-up images first, then every registration sent at once; during the burst anvil mines a
block every `--block-time` seconds, as a real chain does.

Reported per run: images/s (first registration's block to last result's block), latency, and the
CPU seconds per image of each process read from /proc. The ceiling is the oracle's open + decode +
preprocess + forward on one core (no chain, no IPFS, no bookkeeping) times the cores: what any
number of workers could reach on this machine. The last run has no workers: a stand-in writes a
classification into each job as soon as it is recorded, so the coordinator's CPU per image there
is its cost at load, and 1 / that is how many images one coordinator can feed (target: <= 2 ms).
Writes bench/results/scale.{json,md}.
"""

import argparse
import asyncio
import contextlib
import hashlib
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from pyrage import x25519
from sqlalchemy import select

from bench.common import RESULTS, chain_and_node, describe, finish, machine, random_checkpoint, synthetic_pngs
from bench.oracle import ARCHITECTURE, WARMUP, Bench, Run, forward_throughput, percentiles
from oracle.chain.deploy import deploy_on_devnet
from oracle.chain.deployment import Deployment
from oracle.crypto.keys import public_key
from oracle.daemon.jobs import JobRepository
from oracle.daemon.stages.outcome import classified, job_fields
from oracle.daemon.writes import Classified
from oracle.dev.datastores import Postgres, RedisServer
from oracle.dev.process import free_port
from oracle.document import ResultDocument
from oracle.settings import Settings, Tuning
from oracle.store.db import Database
from oracle.store.models import Job, JobState

TARGET_COORDINATOR_MS = 2.0


async def fresh_stores(postgres: Postgres, redis: RedisServer, name: str) -> dict[str, str]:
    await redis.flush()
    return {"database_url": await postgres.create_database(name), "redis_url": redis.url}


CAPACITY = "coordinator alone"
CAPACITY_SUBMIT_BATCH = 512  # at one block a second, results per block bound the rate


async def stand_in_workers(settings: Settings, stop: asyncio.Event) -> None:
    """In place of the workers for the capacity run: every queued job gets a classification at
    once, a real salted document written by the job repository as a worker writes it, so that
    only the coordinator (and the chain) pace the burst."""
    db = Database(settings.database)
    await db.start()  # the coordinator may not have made the tables yet
    jobs = JobRepository(db, "stand-in", 0)
    deployment = Deployment.load(settings.deployment_path)
    queued = select(Job).where(Job.state == JobState.QUEUED).limit(1000)
    try:
        while not stop.is_set():
            async with db.transaction() as session:
                found = list((await session.scalars(queued)).all())
            if found:
                await jobs.classified([stand_in(job, deployment) for job in found])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.02)
    finally:
        await db.close()


def stand_in(job: Job, deployment: Deployment) -> Classified:
    """A stand-in classification, written as the classify stage writes one."""
    content_sha256 = hashlib.sha256(job.cid.encode()).hexdigest()
    document = ResultDocument(
        **job_fields(job, content_sha256, job.model_id, deployment.oracles[0], deployment),
        model_name="stand-in",
        label="benign",
        probabilities={"benign": 0.75, "malignant": 0.25},
        threshold=0.5,
    )
    return classified(job, document)


def table(runs: dict[str, Run], ceiling: float) -> str:
    lines = [
        "| workers | images | seconds | images/s | of ceiling | latency p50 / p95 / max, wall s "
        "| coordinator CPU ms / image | workers' CPU ms / image | lost | duplicated |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in runs.items():
        coordinator = 1000 * r.cpu_s_per_image.get("coordinator", 0.0)
        worker_cpu = 1000 * sum(v for k, v in r.cpu_s_per_image.items() if k.startswith("worker"))
        workers = f"{worker_cpu:.1f}" if label != CAPACITY else "(stand-in)"
        of_ceiling = f"{r.images_per_s / ceiling:.0%}" if label != CAPACITY else "-"
        lines.append(
            f"| {label} | {r.images} | {r.seconds:.1f} | {r.images_per_s:.1f} "
            f"| {of_ceiling} | {percentiles(r.latency_wall_s)} "
            f"| {coordinator:.2f} | {workers} | {r.lost} | {r.duplicated} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=200, help="registrations per worker count")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument(
        "--capacity-images",
        type=int,
        default=1500,
        help="registrations for the coordinator alone, behind stand-in workers (0: skip it)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for a burst to settle")
    parser.add_argument(
        "--block-time",
        type=int,
        default=1,
        help="seconds between blocks during a burst (0: anvil's automine, one block per transaction)",
    )
    args = parser.parse_args()

    info = machine()
    plan: list[tuple[str, int, int]] = [(str(w), w, args.images) for w in args.workers]
    if args.capacity_images:
        plan.append((CAPACITY, 0, args.capacity_images))
    total = sum(WARMUP + images for *_, images in plan)
    print(f"generating {total} synthetic PNGs", flush=True)
    pngs = synthetic_pngs(total, first_seed=30_000)
    runs: dict[str, Run] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # PostgreSQL runs as its own user when the bench runs as root
        models = work / "models"
        card = random_checkpoint(ARCHITECTURE, models / ARCHITECTURE)
        with (
            chain_and_node(work) as (anvil, ipfs),
            Postgres(work / "pg", free_port(), work / "postgres.log") as postgres,
            RedisServer(work / "redis", free_port(), work / "redis.log") as redis,
        ):
            offset = 0
            for index, (label, workers, images) in enumerate(plan):
                mode = f"run-{index}"
                stores = asyncio.run(fresh_stores(postgres, redis, mode.replace("-", "_")))
                oracle_key = x25519.Identity.generate()
                deployment = deploy_on_devnet(
                    anvil.url, work / mode / "deployment.json", [card], public_key(oracle_key)
                )
                print(f"workers {label}: {images} images (+{WARMUP} warm-up)", flush=True)
                alone = label == CAPACITY
                bench = Bench(
                    anvil.url,
                    ipfs,
                    models,
                    work / mode,
                    deployment,
                    oracle_key,
                    stores,
                    workers,
                    args.block_time,
                    stand_in_workers if alone else None,
                )
                tuning = {"submit_batch": CAPACITY_SUBMIT_BATCH} if alone else {}
                batch = pngs[offset : offset + WARMUP + images]
                offset += WARMUP + images
                runs[label] = asyncio.run(bench.run(mode, tuning, batch, args.timeout, False))
                print(f"workers {label}: {runs[label].images_per_s:.1f} images/s", flush=True)
        one_core = forward_throughput(models / ARCHITECTURE, pngs, Tuning().classify_batch, full=True)
    info = finish(info)

    ceiling = info["cores"] * one_core
    mining = (
        f"anvil mines a block every {args.block_time} s during a burst (automine before it)"
        if args.block_time
        else "anvil automines (one block per transaction)"
    )
    method = (
        f"{mining}; confirmations 0; one coordinator and N workers as processes (`run_daemon` "
        f"with role coordinator / worker), random-weight {ARCHITECTURE}, default tuning, each worker "
        "with its own sandbox processes (one per core) and torch threads (half the cores). "
        f"Per run: fresh deployment, database and Redis; {WARMUP} warm-up images, then the "
        f"registrations sent at once. Ceiling: open + decode + preprocess + forward on one core, "
        f"{one_core:.1f} images/s, times {info['cores']} cores = {ceiling:.1f} images/s. "
        "CPU ms / image: CPU time (user + system, /proc) of each daemon process during the burst / "
        "images; the workers' sandbox processes are their children and not counted in it. "
        f"'{CAPACITY}': no workers; a stand-in in the bench process writes a real salted "
        "classification into each queued job as soon as it is recorded, so that only the "
        f"coordinator and the chain pace the burst; submit_batch {CAPACITY_SUBMIT_BATCH} (at one "
        "block a second, the results one transaction carries bound the rate). Behind real workers "
        "the coordinator idles between images and its polls (blocks, ready outcomes, its lock) "
        "are spread over fewer images: that figure is not its cost per image at load."
    )
    summary = ""
    if CAPACITY in runs:
        alone = runs[CAPACITY]
        coordinator_ms = 1000 * alone.cpu_s_per_image.get("coordinator", 0.0)
        feeds = 1000 / coordinator_ms if coordinator_ms else float("inf")
        summary = (
            f"Coordinator alone: {alone.images_per_s:.0f} images/s, {coordinator_ms:.2f} ms of CPU per "
            f"image (target <= {TARGET_COORDINATOR_MS} ms), so one coordinator can feed about "
            f"{feeds:,.0f} images/s on one core of this machine."
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale.json").write_text(
        json.dumps(
            {
                "machine": info,
                "method": method,
                "one_core_full_path_images_per_s": round(one_core, 1),
                "ceiling_images_per_s": round(ceiling, 1),
                "runs": {label: asdict(r) for label, r in runs.items()},
            },
            indent=2,
        )
        + "\n"
    )
    report = f"# Scale-out: workers behind one coordinator\n\n{describe(info)}\n\n{method}\n\n"
    report += f"{table(runs, ceiling)}\n\n{summary}\n"
    (RESULTS / "scale.md").write_text(report)
    print(report)
    sound = all(not r.lost and not r.duplicated for r in runs.values())
    within = CAPACITY not in runs or (
        1000 * runs[CAPACITY].cpu_s_per_image.get("coordinator", 0.0) <= TARGET_COORDINATOR_MS
    )
    return 0 if sound and within else 1


if __name__ == "__main__":
    raise SystemExit(main())
