"""RPC endpoints in turn: an AsyncHTTPProvider that moves on to the next URL when one cannot be
reached, and stays on the one that answered."""

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp
from web3 import AsyncHTTPProvider
from web3.types import RPCEndpoint, RPCResponse

from oracle.chain.registry import ChainError

UNREACHABLE = (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError)


class FallbackHTTPProvider(AsyncHTTPProvider):
    def __init__(self, endpoints: Sequence[str], **kwargs: Any) -> None:
        if not endpoints:
            raise ChainError("at least one RPC URL is needed")
        self.providers = [AsyncHTTPProvider(url, **kwargs) for url in endpoints]
        self.current = 0
        super().__init__(endpoints[0], **kwargs)

    async def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        failures = []
        for step in range(len(self.providers)):
            index = (self.current + step) % len(self.providers)
            try:
                response = await self.providers[index].make_request(method, params)
            except UNREACHABLE as exc:
                failures.append(f"{self.providers[index].endpoint_uri}: {type(exc).__name__}: {exc}")
                continue
            self.current = index
            return response
        raise ChainError(f"no RPC endpoint answered {method}: {'; '.join(failures)}")
