"""Pinning files through Pinata's pinFileToIPFS, or the local node that speaks the same API.

Pinning is content-addressed, so sending the same file twice is harmless: dropped connections
(a server closing an idle keep-alive connection as the request goes out), 5xx and 429 are retried.
"""

from dataclasses import dataclass

import aiohttp

from oracle.backoff import pause
from oracle.ipfs import cid as cids
from oracle.ipfs.errors import CidError, PinningError, TransientAnswer

PINATA_API = "https://api.pinata.cloud"


@dataclass(frozen=True)
class Pin:
    cid: str
    size: int
    timestamp: str


class PinataClient:
    """`jwt` comes from the environment (HISTOCHAIN_PINATA_JWT) or, for the local node, its dev token."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        jwt: str,
        api_url: str = PINATA_API,
        timeout: float = 60,
        attempts: int = 4,
    ) -> None:
        if not jwt:
            raise PinningError("no Pinata JWT: set HISTOCHAIN_PINATA_JWT")
        self.session, self.api_url = session, api_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {jwt}"}
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.attempts = attempts

    async def pin_file(self, data: bytes, name: str, cid_version: int = 1) -> Pin:
        for attempt in range(self.attempts):
            try:
                return await self._pin_once(data, name, cid_version)
            except (aiohttp.ClientConnectionError, TimeoutError, TransientAnswer) as exc:
                last: Exception = exc
            if attempt + 1 < self.attempts:
                await pause(attempt)
        raise PinningError(f"pinning {name} failed after {self.attempts} attempts: {last!r}")

    async def _pin_once(self, data: bytes, name: str, cid_version: int) -> Pin:
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type="application/octet-stream")
        form.add_field("pinataOptions", f'{{"cidVersion": {cid_version}}}', content_type="application/json")
        url = f"{self.api_url}/pinning/pinFileToIPFS"
        async with self.session.post(url, data=form, headers=self._auth, timeout=self.timeout) as response:
            text = await response.text()
            if response.status >= 500 or response.status == 429:
                raise TransientAnswer(f"HTTP {response.status}: {text[:300]}")
            if response.status != 200:
                raise PinningError(f"pinning {name} failed: HTTP {response.status}: {text[:300]}")
            try:
                body = await response.json(content_type=None)
                pin = Pin(str(body["IpfsHash"]), int(body["PinSize"]), str(body["Timestamp"]))
                cids.parse(pin.cid)
            except (ValueError, KeyError, TypeError, CidError) as exc:
                raise PinningError(f"pinning {name}: unexpected answer {text[:300]!r}") from exc
        return pin
