"""Fetching verified bytes by CID from one or more gateways, over aiohttp.

Raw CIDs come as one block (``?format=raw``), UnixFS files as a CAR (``?format=car``); either way
nothing leaves this module unless it matches the CID. One `attempt` asks every gateway in turn
within a deadline, each request with its own timeout and a byte cap while streaming. A gateway that
answers 4xx/5xx, times out or sends bytes that are not the content (`WrongAnswer`) has failed, and
the next one is asked. Correctly hashed blocks that make no acceptable file are proof about the
content itself (no gateway can answer otherwise for that CID), so that verdict stands at once;
a body too large to read is only a gateway's claim, a verdict when every gateway makes it.
Whether and when to try again is the caller's business (the daemon spaces its retries over a
grace period); `fetch` retries for simple callers.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
from multiformats import CID

from oracle.backoff import pause
from oracle.ipfs import cid as cids
from oracle.ipfs.errors import (
    ContentMismatch,
    ContentNotFound,
    ContentTooLarge,
    GatewayUnavailable,
    IpfsError,
    TooManyBlocks,
    TransientAnswer,
    WrongAnswer,
)
from oracle.ipfs.verify import verify_car, verify_raw

CAR_OVERHEAD = 1.05  # block framing and dag-pb nodes on top of the file's bytes
Verify = Callable[[str, bool, bytes, int], Awaitable[bytes]]


async def verify_in_thread(cid: str, raw: bool, body: bytes, max_bytes: int) -> bytes:
    """Hashing and walking the DAG off the event loop; the daemon verifies in its sandbox instead."""
    root = CID.decode(cid)
    if raw:
        return await asyncio.to_thread(verify_raw, root, body)
    return await asyncio.to_thread(verify_car, root, body, max_bytes)


@dataclass(frozen=True)
class Attempt:
    """One pass over the gateways: the verified content, a verdict every gateway agreed on, or
    neither (try again later), with why each gateway failed and whether one was slow."""

    data: bytes | None = None
    verdict: IpfsError | None = None
    failures: list[str] = field(default_factory=list)
    missing: int = 0  # gateways that answered 404
    slow: bool = False
    suspect: IpfsError | None = None  # a verdict some gateways answered, not all: kept for the grace's end


@dataclass(frozen=True)
class Fetched:
    cid: str
    data: bytes


class GatewayFetcher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        gateways: Sequence[str],
        max_bytes: int,
        timeout: float = 30.0,
        verify: Verify = verify_in_thread,
    ) -> None:
        if not gateways:
            raise ValueError("at least one gateway is needed")
        self.session = session
        self.gateways = [g.rstrip("/") for g in gateways]
        self.max_bytes, self.timeout, self.verify = max_bytes, timeout, verify

    async def attempt(self, text: str, deadline: float) -> Attempt:
        """Every gateway asked once before `deadline` (time.monotonic()). `CidError` for a CID this
        oracle cannot verify: that is the registrant's, whatever the gateways say."""
        cid = cids.parse(text)
        raw = cid.codec.name == cids.RAW
        failures: list[str] = []
        verdicts: list[IpfsError] = []
        slow, missing = False, 0
        for gateway in self.gateways:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failures.append(f"{gateway}: not asked, the attempt's deadline passed")
                slow = True
                continue
            try:
                body = await self._download(gateway, cid, min(self.timeout, remaining))
            except TimeoutError as exc:
                slow = True
                failures.append(f"{gateway}: timed out ({type(exc).__name__})")
                continue
            except ContentTooLarge as exc:
                verdicts.append(exc)
                continue
            except ContentNotFound:
                missing += 1
                failures.append(f"{gateway}: not found")
                continue
            except (TransientAnswer, IpfsError, aiohttp.ClientError) as exc:
                failures.append(f"{gateway}: {type(exc).__name__}: {exc}")
                continue
            try:
                return Attempt(data=await self.verify(str(cid), raw, body, self.max_bytes))
            except WrongAnswer as exc:
                failures.append(f"{gateway}: answered wrongly: {exc}")
            except TooManyBlocks as exc:
                verdicts.append(exc)
                failures.append(f"{gateway}: {exc}")
            except (ContentTooLarge, ContentMismatch) as exc:
                return Attempt(verdict=exc)
        if len(verdicts) == len(self.gateways):
            return Attempt(verdict=verdicts[0])
        return Attempt(failures=failures, missing=missing, slow=slow, suspect=next(iter(verdicts), None))

    async def fetch(
        self, text: str, attempts: int = 4, backoff: float = 0.5, deadline: float = 120.0
    ) -> Fetched:
        """Verified bytes for `text`, retrying with backoff; raises a typed IpfsError."""
        outcome = Attempt()
        for number in range(attempts):
            outcome = await self.attempt(text, time.monotonic() + deadline)
            if outcome.data is not None:
                return Fetched(cids.normalise(text), outcome.data)
            if outcome.verdict is not None:
                raise outcome.verdict
            if number + 1 < attempts:
                await pause(number, backoff)
        last = "; ".join(outcome.failures)
        if outcome.missing == len(self.gateways):
            raise ContentNotFound(f"{text}: not found on any gateway after {attempts} attempts ({last})")
        raise GatewayUnavailable(f"{text}: no gateway gave it after {attempts} attempts ({last})")

    async def _download(self, gateway: str, cid: CID, timeout: float) -> bytes:
        raw = cid.codec.name == cids.RAW
        fmt, accept = ("raw", "application/vnd.ipld.raw") if raw else ("car", "application/vnd.ipld.car")
        limit = self.max_bytes if raw else int(self.max_bytes * CAR_OVERHEAD) + 4096
        url = f"{gateway}/ipfs/{cid}?format={fmt}"
        request_timeout = aiohttp.ClientTimeout(total=timeout)
        async with self.session.get(url, headers={"Accept": accept}, timeout=request_timeout) as response:
            if response.status == 404:
                raise ContentNotFound("404")
            if response.status >= 500 or response.status in (408, 429):
                raise TransientAnswer(f"HTTP {response.status}")
            if response.status != 200:
                raise IpfsError(f"HTTP {response.status}")
            declared = response.content_length
            if declared is not None and declared > limit:
                raise ContentTooLarge(f"{cid}: {declared} bytes declared, the limit is {self.max_bytes}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                body.extend(chunk)
                if len(body) > limit:
                    raise ContentTooLarge(f"{cid}: more than {self.max_bytes} bytes")
        return bytes(body)
