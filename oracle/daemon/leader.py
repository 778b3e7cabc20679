"""One active coordinator per oracle key. Coordinators take a PostgreSQL session-level advisory
lock on a connection they hold for life: the first gets it and works; the others stand by and take
it when the active one's session ends (it stopped, crashed, or lost its database), within `poll`
seconds. An active coordinator that loses its connection has lost the lock, and stops at once: two
coordinators sending with one key would race for its nonces."""

import asyncio
import contextlib
import logging

from eth_utils.crypto import keccak
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from oracle.chain.deployment import Deployment
from oracle.errors import HistochainError

log = logging.getLogger("histochain.oracle")


class LockLost(HistochainError):
    """The coordinator's database session ended: another coordinator may hold the lock now."""


def lock_key(deployment: Deployment, oracle: str) -> int:
    """A signed 64-bit key for this oracle on this registry."""
    seed = f"histochain coordinator {deployment.chain_id} {deployment.address} {oracle}".lower()
    return int.from_bytes(keccak(text=seed)[:8], "big", signed=True)


class CoordinatorLock:
    def __init__(self, engine: AsyncEngine, key: int, poll: float = 1.0) -> None:
        if engine.dialect.name != "postgresql":
            raise HistochainError(
                "the coordinator role needs PostgreSQL (database_url): SQLite has no shared lock"
            )
        self.engine, self.key, self.poll = engine, key, poll
        self.connection: AsyncConnection | None = None

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Waits for the lock until `stop`; True once held."""
        self.connection = await self.engine.connect()
        waiting = False
        while not stop.is_set():
            held = await self._ask("SELECT pg_try_advisory_lock(:key)")
            if held:
                if waiting:
                    log.warning("standby: the active coordinator is gone; taking over as active coordinator")
                else:
                    log.info("active coordinator (lock %d held)", self.key)
                return True
            if not waiting:
                log.info("standby: another coordinator holds the lock %d; waiting to take over", self.key)
                waiting = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll)
        return False

    async def watch(self, stop: asyncio.Event) -> None:
        """Returns when `stop` is set; raises `LockLost` as soon as the session is gone."""
        while not stop.is_set():
            try:
                await self._ask("SELECT 1")
            except Exception as exc:
                raise LockLost(f"the coordinator lock's database session ended: {exc}") from exc
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll)

    async def _ask(self, query: str) -> object:
        assert self.connection is not None
        result = await self.connection.execute(text(query), {"key": self.key})
        await self.connection.commit()  # a session lock outlives the transaction that took it
        return result.scalar()

    async def release(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.invalidate()  # ends the session, and with it the lock
                await self.connection.close()  # (a pooled connection would keep the session)
            self.connection = None
