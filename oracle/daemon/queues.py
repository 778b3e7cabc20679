"""The daemon's waiting rooms: a queue whose items come due later (a retry waits in the queue, never
inside a worker), and a budget in bytes for decoded images in memory (a 160 kB PNG can decode to
hundreds of megabytes, so a count of images bounds nothing)."""

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import Counter
from typing import Generic, TypeVar

T = TypeVar("T")


class DelayedQueue(Generic[T]):
    """Unbounded; `get` returns the item due first, once it is due."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._order = itertools.count()
        self._changed = asyncio.Event()
        self._held: Counter[T] = Counter()

    def put(self, item: T, delay: float = 0.0) -> None:
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), item))
        self._held[item] += 1
        self._changed.set()

    def __contains__(self, item: object) -> bool:
        """Is `item` waiting here (due or not)?"""
        return item in self._held

    async def get(self) -> T:
        while True:
            now = time.monotonic()
            if self._heap and self._heap[0][0] <= now:
                item = heapq.heappop(self._heap)[2]
                self._held[item] -= 1
                if not self._held[item]:
                    del self._held[item]
                return item
            wait = self._heap[0][0] - now if self._heap else None
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)

    def qsize(self) -> int:
        return len(self._heap)


class ByteBudget:
    """At most `limit` bytes held at once; one holder may exceed it alone, so nothing waits forever."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._freed = asyncio.Condition()

    async def acquire(self, size: int) -> None:
        async with self._freed:
            await self._freed.wait_for(lambda: self.used == 0 or self.used + size <= self.limit)
            self.used += size

    async def drained(self) -> None:
        """Returns once nothing is held (every decoded image classified)."""
        async with self._freed:
            await self._freed.wait_for(lambda: self.used == 0)

    async def release(self, size: int) -> None:
        async with self._freed:
            self.used -= size
            self._freed.notify_all()


class Discard(Generic[T]):
    """A worker's submit lane: outcomes are in the shared store, where the coordinator finds them."""

    def put(self, item: T, delay: float = 0.0) -> None:
        pass

    async def get(self) -> T:
        raise RuntimeError("nothing is ever taken from a discarding queue")

    def __contains__(self, item: object) -> bool:
        return False

    def qsize(self) -> int:
        return 0
