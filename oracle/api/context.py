"""What every route reads from the app: its settings, the job store, sign-in's settings, the rate
limiter (aiohttp's typed AppKeys, so handlers in several modules share them without a cycle)."""

import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from oracle.api.auth import AuthConfig
from oracle.store.db import Database


@dataclass
class ApiConfig:
    cors_origins: tuple[str, ...] = ("*",)
    rate_per_second: float = 20.0
    rate_burst: int = 60
    model_dir: Path | None = None


@dataclass
class RateLimiter:
    """A token bucket per client key (IP address, or the authenticated address)."""

    rate: float
    burst: int
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def allow(self, key: str) -> float:
        """0 when allowed, else the seconds until a token is available."""
        now = time.monotonic()
        tokens, last = self.buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate
        self.buckets[key] = (tokens - 1, now)
        return 0.0


DB = web.AppKey("db", Database)
CONFIG = web.AppKey("config", ApiConfig)
AUTH = web.AppKey("auth", AuthConfig)
LIMITER = web.AppKey("limiter", RateLimiter)
