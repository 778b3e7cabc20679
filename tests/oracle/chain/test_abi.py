"""The registry's events as the oracle decodes them itself (oracle/chain/abi.py): the same values
web3's contract objects give for real logs, and a clear ChainError for any log an RPC endpoint
makes up or alters."""

import copy
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from web3 import AsyncHTTPProvider, AsyncWeb3

from oracle.chain.errors import ChainError
from oracle.chain.registry import Registry, hex32
from tests.oracle.daemon_support import Stack, register
from tests.support import png, serve

Tamper = Callable[[dict[str, Any]], None]


async def tampering_rpc(upstream: str, tamper: Tamper) -> tuple[web.AppRunner, str]:
    """An RPC endpoint that forwards to `upstream` and alters every log eth_getLogs returns."""

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        async with aiohttp.ClientSession() as http, http.post(upstream, json=body) as response:
            answer = await response.json()
        if isinstance(body, dict) and body.get("method") == "eth_getLogs":
            for log in answer["result"]:
                tamper(log)
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/", handle)
    return await serve(app)


async def test_registrations_decode_as_web3_does(stack: Stack) -> None:
    first = await stack.w3.eth.block_number + 1
    ids = [await register(stack, png(np.random.default_rng(seed), malignant=False), 2) for seed in (1, 2)]
    last = await stack.w3.eth.block_number

    ours = await stack.registry.registrations(first, last)
    theirs = await stack.registry.contract.events.ImageRegistered.get_logs(from_block=first, to_block=last)

    assert [r.image_id for r in ours] == ids
    assert [
        (r.image_id, r.owner, r.model_id, r.cid, r.block_number, r.block_hash, r.transaction, r.log_index)
        for r in ours
    ] == [
        (
            hex32(log["args"]["imageId"]),
            log["args"]["owner"],
            hex32(log["args"]["modelId"]),
            log["args"]["cid"],
            log["blockNumber"],
            hex32(log["blockHash"]),
            hex32(log["transactionHash"]),
            log["logIndex"],
        )
        for log in theirs
    ]


def _set(key: str, value: Any) -> Tamper:
    def tamper(log: dict[str, Any]) -> None:
        log[key] = value

    return tamper


def _topics(change: Callable[[list[str]], list[str]]) -> Tamper:
    def tamper(log: dict[str, Any]) -> None:
        log["topics"] = change(copy.copy(log["topics"]))

    return tamper


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_set("address", "0x" + "11" * 20), "a log we did not ask for"),
        (_set("blockNumber", "0x0"), "a log we did not ask for"),
        (_set("blockHash", "0x1234"), "a log we did not ask for"),
        (_set("logIndex", "seven"), "a malformed log"),
        (_set("data", "0x" + "00" * 31), "ImageRegistered: the RPC answered 0x0000"),
        (_set("data", "not hex"), "where data bytes belong"),
        (_topics(lambda t: t[:3]), "is not this event"),
        (_topics(lambda t: [*t, t[1]]), "is not this event"),
        (_topics(lambda t: [t[0], t[1], "0x" + "ff" * 32, t[3]]), "ImageRegistered.owner: the RPC answered"),
    ],
    ids=["address", "block", "hash", "index", "short-data", "data", "few-topics", "many-topics", "owner"],
)
async def test_a_log_an_rpc_alters_is_refused(stack: Stack, tamper: Tamper, message: str) -> None:
    first = await stack.w3.eth.block_number + 1
    await register(stack, png(np.random.default_rng(3), malignant=True), 2)
    runner, url = await tampering_rpc(stack.settings.rpc_endpoints[0], tamper)
    try:
        w3 = AsyncWeb3(AsyncHTTPProvider(url))
        with pytest.raises(ChainError, match=message):
            await Registry(w3, stack.deployment).registrations(first, first)
        await w3.provider.disconnect()
    finally:
        await runner.cleanup()
