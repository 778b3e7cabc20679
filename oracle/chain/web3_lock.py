"""A fix for web3.py's session lock, applied by `oracle.chain.rpc` and `oracle.chain.registry`.

Every `AsyncHTTPProvider` request takes one process-wide `threading.Lock` through
`web3._utils.async_caching.async_lock`, which acquires it in an executor thread. A request
cancelled while it waits there (a timeout, a stopping stage) releases the lock from under its
holder, and the thread then acquires it for no one: every later request of the process waits
for ever (web3.py issue #3867, fix proposed in #3872, open in the pinned 7.x). The daemon cancels
requests by design, so it once stalled with an idle event loop; this version shields the
acquisition and, when cancelled, gives the lock back as soon as the thread has taken it.
"""

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from web3._utils import http_session_manager


@contextlib.asynccontextmanager
async def async_lock(thread_pool: ThreadPoolExecutor, lock: threading.Lock) -> AsyncIterator[None]:
    acquiring = asyncio.get_running_loop().run_in_executor(thread_pool, lock.acquire)
    try:
        await asyncio.shield(acquiring)
    except asyncio.CancelledError:
        acquiring.add_done_callback(lambda _: lock.release())
        raise
    try:
        yield
    finally:
        lock.release()


def apply() -> None:
    """Makes web3's HTTP session manager use `async_lock` (idempotent)."""
    http_session_manager.async_lock = async_lock  # type: ignore[attr-defined]
