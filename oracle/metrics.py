"""The daemon's Prometheus metrics (one registry per daemon) and the aiohttp app serving them."""

from collections.abc import Mapping
from typing import Protocol

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


class Waiting(Protocol):
    def qsize(self) -> int: ...


class Metrics:
    def __init__(self, queues: Mapping[str, Waiting]) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "histochain_jobs", "Jobs finished, by outcome.", ["outcome"], registry=self.registry
        )
        self.retries = Counter(
            "histochain_retries",
            "Jobs sent back to a queue after an error, by stage.",
            ["stage"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "histochain_settle_seconds",
            "From a registration seen to its outcome confirmed on chain.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.wakeups = Counter(
            "histochain_listener_wakeups",
            "Listener passes, by what woke it: a new head (websocket), a poll, or a quiet socket (idle).",
            ["source"],
            registry=self.registry,
        )
        self.stale_writes = Counter(
            "histochain_stale_writes",
            "Job writes refused because the row moved on since it was read (a reorg, a duplicate), by write.",
            ["write"],
            registry=self.registry,
        )
        self.strikes = Counter(
            "histochain_sandbox_strikes",
            "Sandbox workers killed over an image (deadline passed, or the worker died), by stage.",
            ["stage"],
            registry=self.registry,
        )
        self.invariant_violations = Counter(
            "histochain_invariant_violations",
            "Confirmed jobs whose stored document does not hash to the result hash on chain (should stay 0).",
            registry=self.registry,
        )
        self.transactions = Counter("histochain_transactions", "Transactions mined.", registry=self.registry)
        self.unsendable = Counter(
            "histochain_unsendable_results",
            "Results whose transaction kept reverting when sent alone: failed as MODEL_ERROR instead.",
            registry=self.registry,
        )
        self.gas = Counter(
            "histochain_gas_used", "Gas used by the oracle's transactions.", registry=self.registry
        )
        self.dispatched = Counter(
            "histochain_dispatched",
            "Distributed: imageIds a coordinator sent to the work stream.",
            registry=self.registry,
        )
        self.redispatched = Counter(
            "histochain_redispatched",
            "Distributed: queued jobs sent again because their lease ran out (a worker died holding them).",
            registry=self.registry,
        )
        self.received = Counter(
            "histochain_received",
            "Distributed: imageIds a worker took from the work stream.",
            registry=self.registry,
        )
        self.active = False  # a standby coordinator is not, until it holds the lock
        Gauge(
            "histochain_active",
            "1 while this process does its role's work; 0 for a standby coordinator waiting for the lock.",
            registry=self.registry,
        ).set_function(lambda: float(self.active))
        depth = Gauge(
            "histochain_queue_depth", "Jobs waiting, by stage queue.", ["queue"], registry=self.registry
        )
        for name, queue in queues.items():
            depth.labels(name).set_function(queue.qsize)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def metrics_app(metrics: Metrics, role: str = "all") -> web.Application:
    async def serve(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "role": role, "active": metrics.active})

    app = web.Application()
    app.router.add_get("/metrics", serve)
    app.router.add_get("/health", health)
    return app
