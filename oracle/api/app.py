"""The query API's app factory and its public routes.

Anyone may read an image's public record by its imageId (state, owner, model, result hash,
transactions, times); the result document itself is only for its owner and the viewers the owner
allowed. Since a record belongs to its registrant (imageId hashes the owner with the CID), a CID
names a record only together with an owner: the signed-in reader's own.
"""

import json
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from oracle.api import auth, sharing
from oracle.api.bodies import json_body
from oracle.api.context import AUTH, CONFIG, DB, LIMITER, ApiConfig, RateLimiter
from oracle.api.errors import ApiError, Handler, json_errors
from oracle.api.records import IMAGE_ID, page_of_jobs, public
from oracle.chain.reasons import FailureReason
from oracle.chain.registry import image_id_for
from oracle.ipfs import cid as cids
from oracle.ipfs.errors import CidError
from oracle.ml.card import CARD_FILE, ModelCard
from oracle.ml.cards import AnyCard, load_card
from oracle.ml.sr.card import SrCard
from oracle.store.db import Database
from oracle.store.models import Job, JobState, Outcome

OPENAPI = Path(__file__).with_name("openapi.json")
MAX_BODY = 64 * 1024
__all__ = ["ApiConfig", "create_app"]


def create_app(
    db: Database, config: ApiConfig | None = None, auth_config: auth.AuthConfig | None = None
) -> web.Application:
    """Without `auth_config` (domain, chain, registry) documents cannot be served: sign-in needs them."""
    config = config or ApiConfig()
    app = web.Application(middlewares=[cors, json_errors, rate_limit], client_max_size=MAX_BODY)
    app[DB], app[CONFIG] = db, config
    app[LIMITER] = RateLimiter(config.rate_per_second, config.rate_burst)
    app.router.add_get("/health", health)
    app.router.add_get("/v1/openapi.json", openapi)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/images/{ref}", image)
    app.router.add_get("/v1/owners/{address}/images", owner_images)
    if auth_config is not None:
        app[AUTH] = auth_config
        app.router.add_post("/v1/auth/nonce", sign_in_nonce)
        app.router.add_post("/v1/auth/verify", sign_in_verify)
        app.router.add_post("/v1/auth/signout", sign_out)
        app.router.add_get("/v1/images/{ref}/document", document)
        app.router.add_post("/v1/grants", sharing.add_grant)
        app.router.add_get("/v1/grants", sharing.list_grants)
        app.router.add_post("/v1/grants/revoke", sharing.revoke)
        app.router.add_get("/v1/shared-with-me", sharing.shared_with_me)
    return app


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    origins = request.app[CONFIG].cors_origins
    origin = request.headers.get("Origin")
    allowed = "*" if "*" in origins else (origin if origin in origins else None)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response: web.StreamResponse = web.Response(status=204)
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = allowed
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Vary"] = "Origin"
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    wait = request.app[LIMITER].allow(request.remote or "unknown")
    if wait:
        raise ApiError(429, "rate_limited", f"too many requests; retry in {wait:.2f}s")
    return await handler(request)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(json.loads(OPENAPI.read_text()))


async def models(request: web.Request) -> web.Response:
    directory = request.app[CONFIG].model_dir
    cards = sorted(directory.rglob(CARD_FILE)) if directory and directory.is_dir() else []
    return web.json_response({"models": [_model(load_card(path)) for path in cards]})


def _model(card: AnyCard) -> dict[str, Any]:
    if isinstance(card, SrCard):
        return {
            "model_id": "0x" + card.model_id.hex(),
            "name": card.name,
            "task": card.task,
            "architecture": card.architecture,
            "input": card.input.model_dump(mode="json"),
            "metrics": card.metrics,
            "card": {
                "intended_use": card.intended_use,
                "out_of_scope": list(card.out_of_scope),
                "provenance": card.data.get("source", "not recorded"),
                "data": {k: card.data[k] for k in ("training", "held_out", "lr") if k in card.data},
                "evaluation": card.evaluation,
                "metrics": card.metrics,
                "training": {
                    k: card.training[k]
                    for k in ("objective", "steps", "device", "parameters", "seconds")
                    if k in card.training
                },
            },
        }
    return {
        "model_id": "0x" + card.model_id.hex(),
        "name": card.name,
        "task": card.task,
        "architecture": card.architecture,
        "labels": list(card.labels),
        "threshold": card.threshold,
        "preprocessing": card.preprocessing.model_dump(mode="json"),
        "metrics": card.metrics,
        "members": ["0x" + m.model_id.hex() for m in card.member_cards],
        "card": model_card(card),
    }


def model_card(card: ModelCard) -> dict[str, Any]:
    """What a patient or a clinician should know before trusting an answer: use, data, measured
    performance with intervals, calibration, and what the model refuses (not its weights' matrices)."""
    calibration = card.calibration
    features = card.features
    return {
        "intended_use": card.intended_use,
        "out_of_scope": list(card.out_of_scope),
        "provenance": card.data.get("provenance", "not recorded"),
        "data": {k: card.data[k] for k in ("images", "magnification", "split_seed") if k in card.data},
        "evaluation": card.evaluation,
        "calibration": None
        if calibration is None
        else {
            "summary": calibration.describe(),
            **calibration.model_dump(mode="json", include={"temperature", "identified", "before", "after"}),
        },
        "gate": card.gate,
        "feature_check": None
        if features is None
        else features.model_dump(mode="json", include={"method", "layer", "threshold", "margin", "refused"}),
        "training": {
            k: card.training[k]
            for k in ("epochs_run", "best_epoch", "device", "parameters", "weights_init")
            if k in card.training
        },
    }


def image_ids_of(ref: str, owner: str | None) -> list[str]:
    """Candidate imageIds, best first: the id itself; or, for `owner`, the CID exactly as given,
    then in CIDv1 base32 (a CID registered in another form is another record)."""
    if IMAGE_ID.fullmatch(ref):
        return [ref.lower()]
    try:
        normalised = cids.normalise(ref)
    except CidError as exc:
        raise ApiError(
            400, "invalid_reference", f"neither an imageId (0x + 64 hex) nor a CID: {exc}"
        ) from exc
    if owner is None:
        raise ApiError(
            401, "sign_in_required", "a CID finds a record only for its owner: sign in, or ask by imageId"
        )
    return list(dict.fromkeys(image_id_for(owner, c) for c in (ref, normalised)))


async def find_job(db: Database, ref: str, owner: str | None) -> Job:
    candidates = image_ids_of(ref, owner)
    async with db.transaction() as session:
        found = {
            j.image_id: j for j in await session.scalars(select(Job).where(Job.image_id.in_(candidates)))
        }
    job = next((found[c] for c in candidates if c in found), None)
    if job is None:
        raise ApiError(404, "image_not_found", f"no image {ref} is known to this oracle")
    return job


async def image(request: web.Request) -> web.Response:
    """The public record; with a session of the owner or a granted viewer, the document too."""
    db = request.app[DB]
    signed_in = AUTH in request.app and "Authorization" in request.headers
    reader = await auth.authenticated(request, db) if signed_in else None
    job = await find_job(db, request.match_info["ref"], reader)
    document = None
    if reader is not None and job.state == JobState.CONFIRMED and await auth.may_read(db, reader, job):
        document = job.document
    return web.json_response(public(job) | {"document": document})


async def owner_images(request: web.Request) -> web.Response:
    """Oldest first, `limit` per page; `cursor` is the `next_cursor` of the previous page."""
    owner = auth.checksum(request.match_info["address"])
    page, next_cursor = await page_of_jobs(
        request.app[DB], select(Job).where(Job.owner == owner), request.query
    )
    return web.json_response(
        {"owner": owner, "images": [public(j) for j in page], "next_cursor": next_cursor}
    )


async def sign_in_nonce(request: web.Request) -> web.Response:
    address = auth.checksum((await json_body(request)).get("address"))
    return web.json_response(await auth.issue_nonce(request.app[DB], request.app[AUTH], address))


async def sign_in_verify(request: web.Request) -> web.Response:
    body = await json_body(request)
    message, signature = body.get("message"), body.get("signature")
    if not isinstance(message, str) or not isinstance(signature, str):
        raise ApiError(400, "invalid_message", "expected {message, signature}")
    return web.json_response(
        await auth.verify_sign_in(request.app[DB], request.app[AUTH], message, signature)
    )


async def document(request: web.Request) -> web.Response:
    """The result document, for its owner or a viewer the owner granted it to."""
    db = request.app[DB]
    reader = await auth.authenticated(request, db)
    job = await find_job(db, request.match_info["ref"], reader)
    if not await auth.may_read(db, reader, job):
        raise ApiError(403, "forbidden", f"{reader} may not read this image's result")
    if job.outcome == Outcome.FAILURE:
        reason = FailureReason(job.failure_reason).name.lower() if job.failure_reason else "unknown"
        # The input gate's verdict is written for the patient; other errors can name our gateways.
        said = f": {job.error}" if job.failure_reason == FailureReason.NOT_TISSUE and job.error else ""
        raise ApiError(
            404, "classification_failed", f"the oracle could not classify this image ({reason}){said}"
        )
    if job.state != JobState.CONFIRMED or job.document is None:
        raise ApiError(404, "no_result", f"no result for this image yet (state: {job.state})")
    return web.json_response(
        {"image_id": job.image_id, "result_hash": job.result_hash, "document": job.document}
    )


async def sign_out(request: web.Request) -> web.Response:
    return web.json_response({"address": await auth.sign_out(request, request.app[DB]), "signed_out": True})
