"""One retry pause for every remote call: exponential backoff with full jitter."""

import asyncio
import random


async def pause(attempt: int, base: float = 0.25, cap: float = 8.0) -> None:
    """Full jitter spreads retries from many clients instead of having them collide again."""
    await asyncio.sleep(random.uniform(0, min(cap, base * 2**attempt)))  # noqa: S311
