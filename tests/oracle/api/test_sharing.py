"""The owner's grants listed (so a page can show and revoke them after a reload) and what a viewer may
read, over a real SQLite file and real EIP-712 signatures."""

from datetime import timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from oracle.api import auth, sharing
from oracle.store.db import Database
from tests.oracle.api.client import get, post, sign_in
from tests.oracle.api.conftest import job, seed
from tests.oracle.api.test_auth import OWNER_KEY, STRANGER_KEY, VIEWER_KEY, signed_grant, typed


@pytest.fixture
def api(auth_api: str) -> str:
    return auth_api


@pytest.fixture
async def images(database: Database) -> list[str]:
    """Three of the owner's images, one of another owner."""
    mine = [job(i, owner=OWNER_KEY.address) for i in range(3)]
    await seed(database, [*mine, job(7, owner=STRANGER_KEY.address)])
    return [j.image_id for j in mine]


def in_hours(hours: float) -> int:
    return int((auth.now() + timedelta(hours=hours)).timestamp())


async def grant(api: str, image_id: str, expiry: int, viewer: str = VIEWER_KEY.address) -> dict[str, Any]:
    body = signed_grant(OWNER_KEY, viewer, image_id, expiry)
    status, answer = await post(api + "/v1/grants", body)
    assert status == 201, answer
    return dict(body["grant"])


async def revoke(api: str, nonce: str) -> None:
    revocation = {"owner": OWNER_KEY.address, "nonce": nonce}
    signed = OWNER_KEY.sign_message(encode_typed_data(full_message=typed("Revocation", revocation)))
    assert (
        await post(
            api + "/v1/grants/revoke", {"revocation": revocation, "signature": "0x" + signed.signature.hex()}
        )
    )[0] == 200


async def test_the_owner_lists_its_grants_newest_first_with_their_state(api: str, images: list[str]) -> None:
    first = await grant(api, images[0], in_hours(1))
    everything = await grant(api, auth.ALL_IMAGES, in_hours(2))
    stranger = signed_grant(
        STRANGER_KEY, VIEWER_KEY.address, job(7, owner=STRANGER_KEY.address).image_id, in_hours(1)
    )
    assert (await post(api + "/v1/grants", stranger))[0] == 201
    await revoke(api, first["nonce"])

    status, body = await get(api + "/v1/grants", await sign_in(api, OWNER_KEY))
    assert status == 200
    assert body["owner"] == OWNER_KEY.address
    listed = {g["nonce"]: g for g in body["grants"]}
    assert list(listed) == sorted(listed, key=lambda n: (listed[n]["created_at"], n), reverse=True)
    assert set(listed) == {first["nonce"], everything["nonce"]}, "only this owner's grants"
    assert listed[first["nonce"]] | {"created_at": None, "revoked_at": None} == {
        "owner": OWNER_KEY.address,
        "viewer": VIEWER_KEY.address,
        "nonce": first["nonce"],
        "scope": "image",
        "image_id": images[0],
        "cid": job(0, owner=OWNER_KEY.address).cid,
        "expiry": first["expiry"],
        "created_at": None,
        "revoked_at": None,
        "state": "revoked",
    }
    assert listed[first["nonce"]]["revoked_at"] is not None
    assert (listed[everything["nonce"]]["scope"], listed[everything["nonce"]]["image_id"]) == ("all", None)
    assert listed[everything["nonce"]]["state"] == "active"


async def test_only_an_owner_who_registered_the_image_may_grant_it(api: str, images: list[str]) -> None:
    """A signature costs nothing: a key that registered nothing here grants nothing (it could fill
    any viewer's "Shared with me"), and an owner grants only images it registered."""
    fresh = Account.create()
    for image_id in (auth.ALL_IMAGES, images[0]):
        status, body = await post(
            api + "/v1/grants", signed_grant(fresh, VIEWER_KEY.address, image_id, in_hours(1))
        )
        assert (status, body["error"]["code"]) == (403, "not_registered_by_owner")
    foreign = job(7, owner=STRANGER_KEY.address).image_id
    status, body = await post(
        api + "/v1/grants", signed_grant(OWNER_KEY, VIEWER_KEY.address, foreign, in_hours(1))
    )
    assert (status, body["error"]["message"]) == (
        403,
        "the owner has not registered this image with this oracle",
    )
    viewer = await sign_in(api, VIEWER_KEY)
    assert (await get(api + "/v1/shared-with-me", viewer))[1]["images"] == []


async def test_an_owner_holds_a_bounded_number_of_active_grants(
    api: str, images: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "MAX_ACTIVE_GRANTS", 3)
    grants = [await grant(api, images[0], in_hours(1), viewer=Account.create().address) for _ in range(3)]
    status, body = await post(
        api + "/v1/grants", signed_grant(OWNER_KEY, VIEWER_KEY.address, images[1], in_hours(1))
    )
    assert (status, body["error"]["code"]) == (429, "too_many_grants")
    await revoke(api, grants[0]["nonce"])
    await grant(api, images[1], in_hours(1))


async def test_a_grant_past_its_expiry_is_listed_as_expired(
    api: str, images: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await sign_in(api, OWNER_KEY)
    await grant(api, images[0], in_hours(1))
    later = auth.now() + timedelta(minutes=59, seconds=59)
    monkeypatch.setattr(sharing, "now", lambda: later + timedelta(seconds=2))
    assert [g["state"] for g in (await get(api + "/v1/grants", token))[1]["grants"]] == ["expired"]


async def test_grants_page_without_gaps_or_repeats(api: str, images: list[str]) -> None:
    made = {(await grant(api, images[i % 3], in_hours(1 + i)))["nonce"] for i in range(5)}
    token = await sign_in(api, OWNER_KEY)
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        url = api + "/v1/grants?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, body = await get(url, token)
        assert status == 200
        assert len(body["grants"]) <= 2
        seen += [g["nonce"] for g in body["grants"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == made


@pytest.mark.parametrize(
    "cursor",
    [
        "x",
        "12:0x12",
        "99999999999999999999:0x" + "00" * 32,
        "1:" + "0" * 66,
        "\u00b2:0x" + "00" * 32,  # a digit to str.isdigit(), not to int()
        "9" * 5000 + ":0x" + "00" * 32,  # past int()'s digit limit
    ],
)
async def test_a_foreign_cursor_is_a_400(api: str, cursor: str) -> None:
    status, body = await get(f"{api}/v1/grants?cursor={cursor}", await sign_in(api, OWNER_KEY))
    assert (status, body["error"]["code"]) == (400, "invalid_parameter")


@pytest.mark.parametrize("limit", ["\u00b2", "0", "101", "9" * 5000])
async def test_a_limit_out_of_range_is_a_400(api: str, limit: str) -> None:
    token = await sign_in(api, VIEWER_KEY)
    for path in ("/v1/grants", "/v1/shared-with-me"):
        status, body = await get(f"{api}{path}?limit={limit}", token)
        assert (status, body["error"]["code"]) == (400, "invalid_parameter")


async def test_listings_need_a_session(api: str) -> None:
    for path in ("/v1/grants", "/v1/shared-with-me"):
        status, body = await get(api + path)
        assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_a_viewer_sees_what_it_may_read_and_nothing_else(api: str, images: list[str]) -> None:
    viewer = await sign_in(api, VIEWER_KEY)
    assert (await get(api + "/v1/shared-with-me", viewer))[1]["images"] == []

    one = await grant(api, images[1], in_hours(1))
    longer = await grant(api, images[1], in_hours(3))
    status, body = await get(api + "/v1/shared-with-me", viewer)
    assert status == 200
    assert body["viewer"] == VIEWER_KEY.address
    assert [(i["image_id"], i["shared_until"]) for i in body["images"]] == [(images[1], longer["expiry"])]
    assert body["images"][0]["owner"] == OWNER_KEY.address

    everything = await grant(api, auth.ALL_IMAGES, in_hours(2))
    shown = (await get(api + "/v1/shared-with-me", viewer))[1]["images"]
    assert {i["image_id"]: i["shared_until"] for i in shown} == {
        images[0]: everything["expiry"],
        images[1]: longer["expiry"],
        images[2]: everything["expiry"],
    }, "another owner's images never appear"
    assert (await get(api + "/v1/shared-with-me", await sign_in(api, STRANGER_KEY)))[1]["images"] == []

    await revoke(api, everything["nonce"])
    await revoke(api, one["nonce"])
    shown = (await get(api + "/v1/shared-with-me", viewer))[1]["images"]
    assert [(i["image_id"], i["shared_until"]) for i in shown] == [(images[1], longer["expiry"])]


async def test_what_is_shared_pages_and_ends_at_expiry(
    api: str, images: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    viewer = await sign_in(api, VIEWER_KEY)
    await grant(api, auth.ALL_IMAGES, in_hours(1))
    status, first = await get(api + "/v1/shared-with-me?limit=2", viewer)
    assert status == 200
    assert len(first["images"]) == 2
    assert first["next_cursor"]
    _, second = await get(f"{api}/v1/shared-with-me?limit=2&cursor={first['next_cursor']}", viewer)
    assert [i["image_id"] for i in first["images"] + second["images"]] == [
        i["image_id"] for i in (await get(api + "/v1/shared-with-me", viewer))[1]["images"]
    ]
    assert {i["image_id"] for i in first["images"] + second["images"]} == set(images)
    assert second["next_cursor"] is None
    later = auth.now() + timedelta(hours=1, seconds=1)
    monkeypatch.setattr(sharing, "now", lambda: later)
    assert (await get(api + "/v1/shared-with-me", viewer))[1]["images"] == []
