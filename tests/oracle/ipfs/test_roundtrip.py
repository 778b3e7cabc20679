"""Upload through the Pinata API of the local node, fetch and verify through its gateway."""

import os
from pathlib import Path

import pytest

from oracle.ipfs import cid as cids
from oracle.ipfs.fetch import GatewayFetcher
from oracle.ipfs.pinata import PinataClient
from tests.oracle.ipfs.conftest import SIZES, page_cid


@pytest.mark.parametrize("size", SIZES, ids=[f"{s}B" for s in SIZES])
@pytest.mark.parametrize("cid_version", [0, 1])
async def test_what_the_node_serves_verifies_and_matches_the_page(
    pinata: PinataClient, fetcher: GatewayFetcher, tmp_path: Path, size: int, cid_version: int
):
    data = os.urandom(size)
    pin = await pinata.pin_file(data, "image.bin", cid_version)
    assert pin.cid.startswith("Qm" if cid_version == 0 else "baf")
    assert pin.size >= size

    (tmp_path / "f").write_bytes(data)
    assert pin.cid == page_cid(tmp_path / "f", cid_version)

    fetched = await fetcher.fetch(pin.cid)
    assert fetched.data == data
    assert fetched.cid == cids.normalise(pin.cid)


async def test_single_chunk_v1_is_the_raw_cid_of_the_bytes(pinata: PinataClient):
    data = os.urandom(1000)
    assert (await pinata.pin_file(data, "a.bin", 1)).cid == cids.raw_cid(data)


async def test_cidv0_and_cidv1_of_the_same_file_resolve_to_the_same_content(
    pinata: PinataClient, fetcher: GatewayFetcher
):
    data = os.urandom(300_000)
    v0 = (await pinata.pin_file(data, "a.bin", 0)).cid
    v1_of_v0 = cids.normalise(v0)
    assert v1_of_v0.startswith("bafybei")
    by_v0 = await fetcher.fetch(v0)
    by_v1 = await fetcher.fetch(v1_of_v0)
    assert by_v0.data == by_v1.data == data
    assert by_v0.cid == by_v1.cid == v1_of_v0
