"""Documents only for their owner and granted viewers: SIWE sign-in and EIP-712 grants, with real
signatures (eth-account)."""

import secrets
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from multiformats import CID
from siwe import SiweMessage
from sqlalchemy import func, select

from oracle.api import auth
from oracle.api.app import ApiConfig, create_app
from oracle.api.errors import json_errors
from oracle.chain.registry import image_id_for
from oracle.document import verify
from oracle.ipfs import cid as cids
from oracle.store.db import Database
from oracle.store.models import ApiSession, AuthNonce, Outcome, now
from tests.oracle.api.client import get, post, sign_in, sign_text
from tests.oracle.api.conftest import AUTH, job, seed
from tests.support import serve

OWNER_KEY = Account.create()
VIEWER_KEY = Account.create()
STRANGER_KEY = Account.create()
EMPTY_DIR_V0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"  # a real CIDv0 (an empty UnixFS directory)


@pytest.fixture
def api(auth_api: str) -> str:
    return auth_api


@pytest.fixture
async def image(database: Database) -> str:
    record = job(1, owner=OWNER_KEY.address)
    record.document = {"label": "malignant", "salt": "0x" + "11" * 32}
    from oracle.jcs import commitment

    record.result_hash = "0x" + commitment(record.document).hex()
    await seed(database, [record, job(2, owner=OWNER_KEY.address)])
    return record.image_id


def typed(primary: str, message: dict[str, Any]) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": auth._domain_types(), primary: auth.GRANT_TYPES[primary]},
        "primaryType": primary,
        "domain": AUTH.eip712_domain(),
        "message": message,
    }


def signed_grant(owner: LocalAccount, viewer: str, image_id: str, expiry: int) -> dict[str, Any]:
    grant = {
        "owner": owner.address,
        "viewer": viewer,
        "imageId": image_id,
        "expiry": expiry,
        "nonce": "0x" + secrets.token_hex(32),
    }
    signature = owner.sign_message(encode_typed_data(full_message=typed("Grant", grant))).signature.hex()
    return {"grant": grant, "signature": "0x" + signature}


def in_an_hour() -> int:
    return int((auth.now() + timedelta(hours=1)).timestamp())


async def test_the_owner_reads_a_document_that_hashes_to_its_commitment(api: str, image: str):
    token = await sign_in(api, OWNER_KEY)
    status, body = await get(f"{api}/v1/images/{image}/document", token)
    assert status == 200
    assert verify(body["document"], bytes.fromhex(body["result_hash"][2:]))


async def test_others_get_403_and_anonymous_401(api: str, image: str):
    assert (await get(f"{api}/v1/images/{image}/document", await sign_in(api, STRANGER_KEY)))[0] == 403
    assert (await get(f"{api}/v1/images/{image}/document"))[1]["error"]["code"] == "unauthorized"
    assert (await get(f"{api}/v1/images/{image}/document", "forged-token"))[1]["error"][
        "code"
    ] == "session_expired"


async def test_a_granted_viewer_reads_until_revocation(api: str, image: str):
    viewer = await sign_in(api, VIEWER_KEY)
    assert (await get(f"{api}/v1/images/{image}/document", viewer))[0] == 403
    grant = signed_grant(OWNER_KEY, VIEWER_KEY.address, image, in_an_hour())
    assert (await post(api + "/v1/grants", grant))[0] == 201
    assert (await get(f"{api}/v1/images/{image}/document", viewer))[0] == 200

    revocation = {"owner": OWNER_KEY.address, "nonce": grant["grant"]["nonce"]}
    forged = (
        "0x"
        + VIEWER_KEY.sign_message(
            encode_typed_data(full_message=typed("Revocation", revocation))
        ).signature.hex()
    )
    assert (await post(api + "/v1/grants/revoke", {"revocation": revocation, "signature": forged}))[0] == 403
    signature = (
        "0x"
        + OWNER_KEY.sign_message(
            encode_typed_data(full_message=typed("Revocation", revocation))
        ).signature.hex()
    )
    assert (await post(api + "/v1/grants/revoke", {"revocation": revocation, "signature": signature}))[
        0
    ] == 200
    assert (await get(f"{api}/v1/images/{image}/document", viewer))[0] == 403
    assert (await post(api + "/v1/grants/revoke", {"revocation": revocation, "signature": signature}))[
        0
    ] == 404


async def test_a_grant_for_all_images_ends_at_its_expiry(
    api: str, image: str, monkeypatch: pytest.MonkeyPatch
):
    viewer = await sign_in(api, VIEWER_KEY)
    assert (
        await post(
            api + "/v1/grants", signed_grant(OWNER_KEY, VIEWER_KEY.address, auth.ALL_IMAGES, in_an_hour())
        )
    )[0] == 201
    assert (await get(f"{api}/v1/images/{image}/document", viewer))[0] == 200
    later = auth.now() + timedelta(minutes=61)
    monkeypatch.setattr(auth, "now", lambda: later)
    assert (await get(f"{api}/v1/images/{image}/document", viewer))[0] == 401, "the session expired too"
    fresh = await sign_in(api, VIEWER_KEY)
    status, body = await get(f"{api}/v1/images/{image}/document", fresh)
    assert (status, body["error"]["code"]) == (403, "forbidden"), "signed in again, but the grant has expired"


async def test_grants_are_checked(api: str, image: str):
    stranger_signed = signed_grant(STRANGER_KEY, VIEWER_KEY.address, image, in_an_hour())
    stranger_signed["grant"]["owner"] = OWNER_KEY.address
    assert (await post(api + "/v1/grants", stranger_signed))[1]["error"]["code"] == "not_signed_by_owner"
    expired = signed_grant(OWNER_KEY, VIEWER_KEY.address, image, int(auth.now().timestamp()) - 1)
    assert (await post(api + "/v1/grants", expired))[1]["error"]["code"] == "grant_expired"
    grant = signed_grant(OWNER_KEY, VIEWER_KEY.address, image, in_an_hour())
    assert (await post(api + "/v1/grants", grant))[0] == 201
    assert (await post(api + "/v1/grants", grant))[0] == 409
    for broken in (
        {},
        {"grant": {}, "signature": "0x"},
        {"grant": grant["grant"] | {"imageId": "0x12"}, "signature": "0x00"},
    ):
        assert (await post(api + "/v1/grants", broken))[0] == 400


async def siwe_for(api: str, account: LocalAccount, **changes: Any) -> tuple[str, str]:
    _, issued = await post(api + "/v1/auth/nonce", {"address": account.address})
    fields = SiweMessage.from_message(message=issued["message"]).model_dump() | changes
    text = SiweMessage(**fields).prepare_message()
    return text, sign_text(account, text)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"domain": "evil.example"}, "invalid_signature"),
        ({"chain_id": 1}, "wrong_chain"),
        ({"nonce": "notissued123"}, "unknown_nonce"),
        ({"uri": "https://evil.example/phish"}, "wrong_uri"),
    ],
)
async def test_sign_in_refuses_wrong_domain_chain_or_nonce(api: str, changes: dict[str, Any], code: str):
    text, signature = await siwe_for(api, OWNER_KEY, **changes)
    status, body = await post(api + "/v1/auth/verify", {"message": text, "signature": signature})
    assert status == 401
    assert body["error"]["code"] == code


async def test_nonces_are_single_use(api: str):
    text, signature = await siwe_for(api, OWNER_KEY)
    assert (await post(api + "/v1/auth/verify", {"message": text, "signature": signature}))[0] == 200
    status, body = await post(api + "/v1/auth/verify", {"message": text, "signature": signature})
    assert (status, body["error"]["code"]) == (401, "nonce_used")


async def test_tampered_signatures_and_messages_are_refused(api: str):
    text, signature = await siwe_for(api, OWNER_KEY)
    tampered = signature[:-4] + ("00" if signature[-4:-2] != "00" else "11") + signature[-2:]
    assert (await post(api + "/v1/auth/verify", {"message": text, "signature": tampered}))[0] == 401
    other_text, _ = await siwe_for(api, OWNER_KEY)
    assert (await post(api + "/v1/auth/verify", {"message": other_text, "signature": signature}))[0] == 401
    assert (await post(api + "/v1/auth/verify", {"message": "hello", "signature": signature}))[0] == 400


async def test_expired_sign_in_messages_are_refused(api: str, monkeypatch: pytest.MonkeyPatch):
    text, signature = await siwe_for(api, OWNER_KEY)
    later = auth.now() + AUTH.nonce_ttl + timedelta(seconds=1)
    monkeypatch.setattr(auth, "now", lambda: later)
    assert (await post(api + "/v1/auth/verify", {"message": text, "signature": signature}))[0] == 401


async def test_bodies_must_be_json_objects(api: str):
    async with aiohttp.ClientSession() as s:
        async with s.post(api + "/v1/auth/nonce", data="address=0x1") as r:
            assert (r.status, (await r.json())["error"]["code"]) == (415, "unsupported_media_type")
        async with s.post(
            api + "/v1/auth/nonce", data="{", headers={"Content-Type": "application/json"}
        ) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid_json")
        async with s.post(api + "/v1/auth/nonce", json={"address": "0x1"}) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid_address")
        async with s.post(
            api + "/v1/grants", data=b"{" + b" " * 70_000 + b"}", headers={"Content-Type": "application/json"}
        ) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (413, "body_too_large")


async def test_the_image_record_carries_the_document_only_for_those_allowed(api: str, image: str):
    owner = await sign_in(api, OWNER_KEY)
    stranger = await sign_in(api, STRANGER_KEY)
    assert (await get(f"{api}/v1/images/{image}"))[1]["document"] is None
    assert (await get(f"{api}/v1/images/{image}", stranger))[1]["document"] is None
    status, body = await get(f"{api}/v1/images/{image}", owner)
    assert status == 200
    assert verify(body["document"], bytes.fromhex(body["result_hash"][2:]))
    assert (await get(f"{api}/v1/images/{image}", "stale-token"))[0] == 401


async def test_a_cid_finds_only_the_signed_in_owners_record_and_an_exact_form_wins(
    api: str, database: Database
) -> None:
    """The same CID registered by two accounts is two records; each owner's CID finds their own,
    never the other's. A CID registered in two forms (v0 and v1) is two records too: the exact
    string finds its own before the normalised one."""
    mine, theirs = job(7, owner=OWNER_KEY.address), job(7, owner=STRANGER_KEY.address)
    v1 = cids.normalise(EMPTY_DIR_V0)
    as_v0, as_v1 = job(8, owner=OWNER_KEY.address), job(9, owner=OWNER_KEY.address)
    as_v0.cid, as_v0.image_id = EMPTY_DIR_V0, image_id_for(OWNER_KEY.address, EMPTY_DIR_V0)
    as_v1.cid, as_v1.image_id = v1, image_id_for(OWNER_KEY.address, v1)
    await seed(database, [mine, theirs, as_v0, as_v1])
    assert mine.cid == theirs.cid
    assert mine.image_id != theirs.image_id

    owner, stranger, viewer = [await sign_in(api, k) for k in (OWNER_KEY, STRANGER_KEY, VIEWER_KEY)]
    assert (await get(f"{api}/v1/images/{mine.cid}", owner))[1]["image_id"] == mine.image_id
    assert (await get(f"{api}/v1/images/{mine.cid}", stranger))[1]["image_id"] == theirs.image_id
    status, body = await get(f"{api}/v1/images/{mine.cid}/document", viewer)
    assert (status, body["error"]["code"]) == (404, "image_not_found")
    assert (await get(f"{api}/v1/images/{EMPTY_DIR_V0}", owner))[1]["image_id"] == as_v0.image_id
    assert (await get(f"{api}/v1/images/{v1}", owner))[1]["image_id"] == as_v1.image_id
    base36 = CID.decode(v1).encode("base36")  # a form nobody registered: found through its normal form
    assert (await get(f"{api}/v1/images/{base36}", owner))[1]["image_id"] == as_v1.image_id


@pytest.mark.parametrize("expiry", [2**63, 2**64 - 1])
async def test_a_grant_expiry_past_what_can_be_stored_is_a_json_400(
    api: str, image: str, expiry: int
) -> None:
    """It was a 500 with no JSON: the number overflowed the database column."""
    status, body = await post(api + "/v1/grants", signed_grant(OWNER_KEY, VIEWER_KEY.address, image, expiry))
    assert (status, body["error"]["code"]) == (400, "invalid_grant")


async def test_signing_out_ends_the_session(api: str, image: str) -> None:
    token = await sign_in(api, OWNER_KEY)
    assert (await get(f"{api}/v1/images/{image}/document", token))[0] == 200
    status, body = await post(api + "/v1/auth/signout", {}, token)
    assert (status, body) == (200, {"address": OWNER_KEY.address, "signed_out": True})
    status, body = await get(f"{api}/v1/images/{image}/document", token)
    assert (status, body["error"]["code"]) == (401, "session_expired")
    assert (await post(api + "/v1/auth/signout", {}, token))[0] == 401


async def test_expired_nonces_and_sessions_are_purged(database: Database) -> None:
    """Rows do not pile up: an expired nonce goes when a new one is issued, an expired session
    when a new one starts."""
    config = auth.AuthConfig(
        AUTH.domain, AUTH.uri, AUTH.chain_id, AUTH.registry, nonce_ttl=timedelta(0), session_ttl=timedelta(0)
    )
    runner, api = await serve(create_app(database, ApiConfig(rate_per_second=1000, rate_burst=1000), config))
    try:
        for _ in range(5):
            assert (await post(api + "/v1/auth/nonce", {"address": OWNER_KEY.address}))[0] == 200
        async with database.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(AuthNonce)) == 1
            session.add(
                ApiSession(token_sha256="ab" * 32, address=OWNER_KEY.address, expires_at=now() - timedelta(1))
            )
        live = timedelta(hours=1)
        fresh = auth.AuthConfig(AUTH.domain, AUTH.uri, AUTH.chain_id, AUTH.registry, session_ttl=live)
        await auth.verify_sign_in(database, fresh, *(await _signed_nonce(database, fresh)))
        async with database.transaction() as session:
            tokens = (await session.scalars(select(ApiSession.token_sha256))).all()
        assert "ab" * 32 not in tokens
        assert len(tokens) == 1
    finally:
        await runner.cleanup()


async def _signed_nonce(database: Database, config: auth.AuthConfig) -> tuple[str, str]:
    issued = await auth.issue_nonce(database, config, OWNER_KEY.address)
    return issued["message"], sign_text(OWNER_KEY, issued["message"])


async def test_a_failed_images_document_request_says_why(api: str, database: Database) -> None:
    """The input gate's words reach the owner; another failure's internal error text does not."""
    refused, unreachable = job(30, owner=OWNER_KEY.address), job(31, owner=OWNER_KEY.address)
    for failed, reason, error in (
        (refused, 10, "not tissue (stain): 12% of the tissue has the pink-to-purple colour of H&E staining"),
        (unreachable, 1, "http://10.0.0.7:8080/ipfs/…: connection refused"),
    ):
        failed.outcome, failed.failure_reason, failed.error = Outcome.FAILURE, reason, error
        failed.document, failed.result_hash = None, None
    await seed(database, [refused, unreachable])
    token = await sign_in(api, OWNER_KEY)
    answers = [await get(f"{api}/v1/images/{j.image_id}/document", token) for j in (refused, unreachable)]
    assert [status for status, _ in answers] == [404, 404]
    assert [body["error"] for _, body in answers] == [
        {
            "code": "classification_failed",
            "message": "the oracle could not classify this image (not_tissue): not tissue (stain): 12% of "
            "the tissue has the pink-to-purple colour of H&E staining",
        },
        {
            "code": "classification_failed",
            "message": "the oracle could not classify this image (content_unreachable)",
        },
    ]


async def test_an_unexpected_error_is_still_a_json_answer() -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app = web.Application(middlewares=[json_errors])
    app.router.add_get("/broken", broken)
    runner, url = await serve(app)
    try:
        status, body = await get(url + "/broken")
    finally:
        await runner.cleanup()
    assert (status, body["error"]["code"]) == (500, "internal_error")
    assert "a bug" not in body["error"]["message"]
