"""RPC endpoints in turn: an AsyncHTTPProvider that moves on to the next URL when one cannot be
reached, and stays on the one that answered."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp
from web3 import AsyncHTTPProvider
from web3.types import RPCEndpoint, RPCResponse

from oracle.chain import web3_lock
from oracle.chain.errors import ChainError

web3_lock.apply()  # before any request: web3's session lock, safe to cancel

UNREACHABLE = (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError)
T = TypeVar("T")


class FallbackHTTPProvider(AsyncHTTPProvider):
    def __init__(self, endpoints: Sequence[str], **kwargs: Any) -> None:
        if not endpoints:
            raise ChainError("at least one RPC URL is needed")
        self.providers = [AsyncHTTPProvider(url, **kwargs) for url in endpoints]
        self.current = 0
        super().__init__(endpoints[0], **kwargs)

    async def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        return await self._first(method, lambda provider: provider.make_request(method, params))

    async def make_batch_request(
        self, batch_requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        """One JSON-RPC batch, to the first endpoint that answers (see `Registry.read_many`)."""
        what = f"a batch of {len(batch_requests)}"
        return await self._first(what, lambda provider: provider.make_batch_request(batch_requests))

    async def _first(self, what: str, ask: Callable[[AsyncHTTPProvider], Awaitable[T]]) -> T:
        failures = []
        for step in range(len(self.providers)):
            index = (self.current + step) % len(self.providers)
            try:
                response = await ask(self.providers[index])
            except UNREACHABLE as exc:
                failures.append(f"{self.providers[index].endpoint_uri}: {type(exc).__name__}: {exc}")
                continue
            self.current = index
            return response
        raise ChainError(f"no RPC endpoint answered {what}: {'; '.join(failures)}")
