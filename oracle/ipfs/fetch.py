"""Fetching verified bytes by CID from one or more gateways, over aiohttp.

Raw CIDs come as one block (``?format=raw``), UnixFS files as a CAR (``?format=car``); either way
nothing leaves this module unless it matches the CID. Gateways are tried in turn; timeouts,
connection errors and 5xx are retried with exponential backoff and full jitter; bodies are read
with a byte cap.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from multiformats import CID

from oracle.backoff import pause
from oracle.ipfs import cid as cids
from oracle.ipfs.errors import (
    CidError,
    ContentNotFound,
    ContentTooLarge,
    GatewayUnavailable,
    IpfsError,
    TransientAnswer,
)
from oracle.ipfs.verify import verify_car, verify_raw

CAR_OVERHEAD = 1.05  # block framing and dag-pb nodes on top of the file's bytes


@dataclass(frozen=True)
class Fetched:
    cid: str
    data: bytes
    gateway: str


class GatewayFetcher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        gateways: Sequence[str],
        max_bytes: int,
        timeout: float = 30.0,
        attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        if not gateways:
            raise ValueError("at least one gateway is needed")
        self.session = session
        self.gateways = [g.rstrip("/") for g in gateways]
        self.max_bytes = max_bytes
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.attempts = attempts
        self.backoff, self.max_backoff = backoff, max_backoff

    async def fetch(self, text: str) -> Fetched:
        """Verified bytes for `text` (any CID form), or a typed IpfsError."""
        cid = cids.parse(text)
        failures: list[str] = []
        for attempt in range(self.attempts):
            not_found = 0
            for gateway in self.gateways:
                try:
                    return Fetched(str(cid), await self._from(gateway, cid), gateway)
                except ContentNotFound as exc:
                    not_found += 1
                    failures.append(f"{gateway}: {exc}")
                except (TimeoutError, aiohttp.ClientError, TransientAnswer) as exc:
                    failures.append(f"{gateway}: {type(exc).__name__}: {exc}")
            if attempt + 1 < self.attempts:
                await pause(attempt, self.backoff, self.max_backoff)
        last = "; ".join(failures[-len(self.gateways) :])
        if not_found == len(self.gateways):
            raise ContentNotFound(f"{cid}: not found on any gateway after {self.attempts} attempts ({last})")
        raise GatewayUnavailable(f"{cid}: no gateway answered after {self.attempts} attempts ({last})")

    async def _from(self, gateway: str, cid: CID) -> bytes:
        raw = cid.codec.name == cids.RAW
        fmt, accept = ("raw", "application/vnd.ipld.raw") if raw else ("car", "application/vnd.ipld.car")
        limit = self.max_bytes if raw else int(self.max_bytes * CAR_OVERHEAD) + 4096
        url = f"{gateway}/ipfs/{cid}?format={fmt}"
        async with self.session.get(url, headers={"Accept": accept}, timeout=self.timeout) as response:
            if response.status == 404:
                raise ContentNotFound("404")
            if response.status == 400:
                raise CidError(f"{gateway} refused {cid}: {await response.text()}")
            if response.status >= 500 or response.status in (408, 429):
                raise TransientAnswer(f"HTTP {response.status}")
            if response.status != 200:
                raise IpfsError(f"{gateway} answered HTTP {response.status} for {cid}")
            declared = response.content_length
            if declared is not None and declared > limit:
                raise ContentTooLarge(f"{cid}: {declared} bytes declared, the limit is {self.max_bytes}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                body.extend(chunk)
                if len(body) > limit:
                    raise ContentTooLarge(f"{cid}: more than {self.max_bytes} bytes")
        # Hashing and walking the DAG happen in a worker thread, off the event loop that the other
        # fetches, the listener and the submitter share (hashlib releases the GIL on large blocks).
        if raw:
            return await asyncio.to_thread(verify_raw, cid, bytes(body))
        return await asyncio.to_thread(verify_car, cid, bytes(body), self.max_bytes)
