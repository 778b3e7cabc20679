"""web3.py's session lock (oracle/chain/web3_lock.py): a request cancelled while it waits for the
lock neither frees the lock from under its holder nor leaves it taken for no one. With web3's own
`async_lock` this stalled every later request of the process (web3.py issue #3867)."""

import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from web3._utils import async_caching, http_session_manager

from oracle.chain import web3_lock


def test_web3s_http_session_manager_uses_the_fixed_lock() -> None:
    import oracle.chain.registry  # noqa: F401 - what applies it, like oracle.chain.rpc

    assert http_session_manager.async_lock is web3_lock.async_lock
    assert async_caching.async_lock is not web3_lock.async_lock  # the upstream one, still unfixed


async def test_a_request_cancelled_while_waiting_for_the_lock_stalls_no_later_one() -> None:
    lock, pool = threading.Lock(), ThreadPoolExecutor(2)
    held, done = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with web3_lock.async_lock(pool, lock):
            held.set()
            await done.wait()

    async def waiter() -> None:
        async with web3_lock.async_lock(pool, lock):
            raise AssertionError("the cancelled request never gets the lock")

    holding = asyncio.create_task(holder())
    await held.wait()
    waiting = asyncio.create_task(waiter())
    while pool._work_queue.qsize() or not any(t.is_alive() for t in pool._threads):  # its acquire runs
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    assert lock.locked(), "still the holder's: a cancelled waiter does not release it"
    done.set()
    await holding
    async with asyncio.timeout(10), web3_lock.async_lock(pool, lock):  # the next request is served
        assert lock.locked()
    assert not lock.locked()
    pool.shutdown()
