"""The distributed mode under a burst: 1, 2 and 4 workers behind one coordinator, same run.

    .venv/bin/python -m bench.scale [--images 200] [--workers 1 2 4]

Real anvil, the local IPFS node, PostgreSQL and redis-server from Debian's packages (started here
in a temp folder), the registry deployed afresh for each worker count, and the real daemon:
`histochain oracle run --role coordinator` and `--role worker` as processes of their own (the
bench.oracle harness, `Bench`, with `workers` > 0). Each worker count gets a fresh database, an
empty Redis, fresh images (the same number), WARMUP warm-up images first, then every registration
sent at once.

Reported per worker count: images/s (first registration's block to last result's block),
latency, and the CPU seconds per image of each process read from /proc (the coordinator's is
what bounds how many images one coordinator can feed: 1 / its CPU per image). The ceiling is the
oracle's open + decode + preprocess + forward on one core (no chain, no IPFS, no bookkeeping)
times the cores: what any number of workers could reach on this machine. Writes
bench/results/scale.{json,md}.
"""

import argparse
import asyncio
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from pyrage import x25519

from bench.common import RESULTS, chain_and_node, describe, finish, machine, random_checkpoint, synthetic_pngs
from bench.oracle import ARCHITECTURE, WARMUP, Bench, Run, forward_throughput, percentiles
from oracle.chain.deploy import deploy_on_devnet
from oracle.crypto.keys import public_key
from oracle.dev.datastores import Postgres, RedisServer
from oracle.dev.process import free_port
from oracle.settings import Tuning

TARGET_COORDINATOR_MS = 2.0


async def fresh_stores(postgres: Postgres, redis: RedisServer, name: str) -> dict[str, str]:
    await redis.flush()
    return {"database_url": await postgres.create_database(name), "redis_url": redis.url}


def table(runs: dict[int, Run], ceiling: float) -> str:
    lines = [
        "| workers | images | seconds | images/s | of ceiling | latency p50 / p95 / max, wall s "
        "| coordinator CPU ms / image | workers' CPU ms / image | lost | duplicated |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workers, r in runs.items():
        coordinator = 1000 * r.cpu_s_per_image.get("coordinator", 0.0)
        worker_cpu = 1000 * sum(v for k, v in r.cpu_s_per_image.items() if k.startswith("worker"))
        lines.append(
            f"| {workers} | {r.images} | {r.seconds:.1f} | {r.images_per_s:.1f} "
            f"| {r.images_per_s / ceiling:.0%} | {percentiles(r.latency_wall_s)} "
            f"| {coordinator:.2f} | {worker_cpu:.1f} | {r.lost} | {r.duplicated} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=200, help="registrations per worker count")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for a burst to settle")
    args = parser.parse_args()

    info = machine()
    per_run = WARMUP + args.images
    print(f"generating {per_run * len(args.workers)} synthetic PNGs", flush=True)
    pngs = synthetic_pngs(per_run * len(args.workers), first_seed=30_000)
    runs: dict[int, Run] = {}
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
            for index, workers in enumerate(args.workers):
                mode = f"workers-{workers}"
                stores = asyncio.run(fresh_stores(postgres, redis, mode.replace("-", "_")))
                oracle_key = x25519.Identity.generate()
                deployment = deploy_on_devnet(
                    anvil.url, work / mode / "deployment.json", [card], public_key(oracle_key)
                )
                print(f"{mode}: {args.images} images (+{WARMUP} warm-up)", flush=True)
                bench = Bench(anvil.url, ipfs, models, work / mode, deployment, oracle_key, stores, workers)
                images = pngs[index * per_run : (index + 1) * per_run]
                runs[workers] = asyncio.run(bench.run(mode, {}, images, args.timeout, False))
                print(f"{mode}: {runs[workers].images_per_s:.1f} images/s", flush=True)
        one_core = forward_throughput(models / ARCHITECTURE, pngs, Tuning().classify_batch, full=True)
    info = finish(info)

    ceiling = info["cores"] * one_core
    coordinator_ms = max(1000 * r.cpu_s_per_image.get("coordinator", 0.0) for r in runs.values())
    feeds = 1000 / coordinator_ms if coordinator_ms else float("inf")
    method = (
        "anvil automines; confirmations 0; one coordinator and N workers as processes (`run_daemon` "
        f"with role coordinator / worker), random-weight {ARCHITECTURE}, default tuning, each worker "
        "with its own sandbox processes (one per core) and torch threads (half the cores). "
        f"Per worker count: fresh deployment, database and Redis; {WARMUP} warm-up images, then "
        f"{args.images} registrations sent at once. Ceiling: open + decode + preprocess + forward on "
        f"one core, {one_core:.1f} images/s, times {info['cores']} cores = {ceiling:.1f} images/s. "
        "CPU ms / image: CPU time (user + system, /proc) of each daemon process during the burst / "
        "images; the workers' sandbox processes are their children and not counted in it."
    )
    summary = (
        f"Coordinator CPU per image: at most {coordinator_ms:.2f} ms (target <= {TARGET_COORDINATOR_MS} ms), "
        f"so one coordinator can feed about {feeds:,.0f} images/s."
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale.json").write_text(
        json.dumps(
            {
                "machine": info,
                "method": method,
                "one_core_full_path_images_per_s": round(one_core, 1),
                "ceiling_images_per_s": round(ceiling, 1),
                "coordinator_cpu_ms_per_image": round(coordinator_ms, 3),
                "runs": {w: asdict(r) for w, r in runs.items()},
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
    return 0 if sound and coordinator_ms <= TARGET_COORDINATOR_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
