"""The daemon's waiting rooms: items come out when due and in due order; decoded bytes in memory
stay under the budget, and one image larger than the whole budget still gets through alone."""

import asyncio
import time

import pytest

from oracle.daemon.queues import ByteBudget, DelayedQueue


async def test_items_come_out_when_due_and_in_due_order() -> None:
    queue: DelayedQueue[str] = DelayedQueue()
    queue.put("later", 0.3)
    queue.put("now")
    queue.put("soon", 0.1)
    started = time.monotonic()
    assert [await queue.get() for _ in range(3)] == ["now", "soon", "later"]
    assert time.monotonic() - started >= 0.3
    assert queue.qsize() == 0


async def test_a_waiting_get_wakes_for_an_item_put_after_it_began_waiting() -> None:
    queue: DelayedQueue[int] = DelayedQueue()
    queue.put(1, 60)  # due long after the test
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # the getter is waiting for the far item
    queue.put(2)
    assert await asyncio.wait_for(getter, 5) == 2
    assert queue.qsize() == 1


async def test_equal_due_times_keep_the_order_they_were_put_in() -> None:
    queue: DelayedQueue[int] = DelayedQueue()
    for i in range(50):
        queue.put(i)
    assert [await queue.get() for _ in range(50)] == list(range(50))


async def test_the_budget_holds_bytes_under_its_limit() -> None:
    budget = ByteBudget(100)
    await budget.acquire(60)
    waiting = asyncio.create_task(budget.acquire(60))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert budget.used == 60
    await budget.release(60)
    await asyncio.wait_for(waiting, 5)
    assert budget.used == 60


async def test_one_holder_larger_than_the_budget_passes_alone() -> None:
    budget = ByteBudget(100)
    await asyncio.wait_for(budget.acquire(500), 5)
    blocked = asyncio.create_task(budget.acquire(1))
    await asyncio.sleep(0)
    assert not blocked.done()
    await budget.release(500)
    await asyncio.wait_for(blocked, 5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(budget.acquire(100), 0.2)
