"""A client of the query API as the page is one: JSON over HTTP, Sign-In with Ethereum."""

from typing import Any

import aiohttp
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount


async def post(url: str, body: Any, token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
        return r.status, await r.json()


async def get(url: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as r:
        return r.status, await r.json()


def sign_text(account: LocalAccount, text: str) -> str:
    return "0x" + account.sign_message(encode_defunct(text=text)).signature.hex()


async def sign_in(api: str, account: LocalAccount) -> str:
    status, issued = await post(api + "/v1/auth/nonce", {"address": account.address})
    assert status == 200
    status, session = await post(
        api + "/v1/auth/verify",
        {"message": issued["message"], "signature": sign_text(account, issued["message"])},
    )
    assert status == 200, session
    assert session["address"] == account.address
    return str(session["token"])
