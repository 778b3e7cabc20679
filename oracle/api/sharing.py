"""Sharing: an owner's EIP-712 grants and revocations, the owner's list of them, and what a signed-in
viewer may read. Listing needs a session; granting and revoking need the owner's signature, and a
grant an image the owner registered (auth.MAX_ACTIVE_GRANTS bounds an owner's active ones)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import and_, exists, func, or_, select

from oracle.api import auth
from oracle.api.bodies import json_body
from oracle.api.context import AUTH, DB
from oracle.api.errors import ApiError
from oracle.api.records import BYTES32, DIGITS, PAGE_LIMIT, page_of_jobs, public, query_int
from oracle.store.models import Grant, Job, now

MAX_CURSOR_MICROS = 2**63 - 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def add_grant(request: web.Request) -> web.Response:
    grant = await auth.add_grant(request.app[DB], request.app[AUTH], await json_body(request))
    return web.json_response({"grant": grant}, status=201)


async def revoke(request: web.Request) -> web.Response:
    return web.json_response(
        await auth.revoke_grant(request.app[DB], request.app[AUTH], await json_body(request))
    )


def _micros(moment: datetime) -> int:
    return (auth.utc(moment) - EPOCH) // timedelta(microseconds=1)


def grant_record(grant: Grant, cid: str | None, at: int) -> dict[str, Any]:
    """One grant as its owner sees it; `state` at unix time `at`: active, revoked or expired."""
    state = "revoked" if grant.revoked_at else "expired" if grant.expiry <= at else "active"
    return {
        "owner": grant.owner,
        "viewer": grant.viewer,
        "nonce": grant.nonce,
        "scope": "all" if grant.image_id == auth.ALL_IMAGES else "image",
        "image_id": None if grant.image_id == auth.ALL_IMAGES else grant.image_id,
        "cid": cid,
        "expiry": grant.expiry,
        "created_at": grant.created_at.isoformat(),
        "revoked_at": grant.revoked_at.isoformat() if grant.revoked_at else None,
        "state": state,
    }


async def list_grants(request: web.Request) -> web.Response:
    """The signed-in owner's grants, newest first, active and past: a page can show and revoke them
    after a reload. `cursor` is the previous page's `next_cursor`."""
    db = request.app[DB]
    owner = await auth.authenticated(request, db)
    limit = query_int(request.query, "limit", 20, 1, PAGE_LIMIT)
    image = and_(Job.image_id == Grant.image_id, Job.owner == Grant.owner)  # an owner names only its own
    query = select(Grant, Job.cid).outerjoin(Job, image).where(Grant.owner == owner)
    cursor = request.query.get("cursor")
    if cursor is not None:
        micros, _, nonce = cursor.partition(":")
        if not DIGITS.fullmatch(micros) or int(micros) > MAX_CURSOR_MICROS or not BYTES32.fullmatch(nonce):
            raise ApiError(400, "invalid_parameter", "cursor is not a next_cursor from this API")
        try:  # exact to the microsecond (a float division is not, and would skip or repeat a grant)
            created = EPOCH + timedelta(microseconds=int(micros))
        except OverflowError as exc:
            raise ApiError(400, "invalid_parameter", "cursor is not a next_cursor from this API") from exc
        query = query.where(
            or_(Grant.created_at < created, and_(Grant.created_at == created, Grant.nonce < nonce))
        )
    query = query.order_by(Grant.created_at.desc(), Grant.nonce.desc()).limit(limit + 1)
    async with db.transaction() as session:
        rows = [(grant, cid) for grant, cid in await session.execute(query)]
    page, more = rows[:limit], len(rows) > limit
    at = int(now().timestamp())
    last = page[-1][0] if page else None
    return web.json_response(
        {
            "owner": owner,
            "grants": [grant_record(grant, cid, at) for grant, cid in page],
            "next_cursor": f"{_micros(last.created_at)}:{last.nonce}" if more and last else None,
        }
    )


async def shared_with_me(request: web.Request) -> web.Response:
    """The images the signed-in viewer may read now (an active grant for the image, or for all of its
    owner's images), oldest registration first, each with the latest expiry that covers it."""
    db = request.app[DB]
    viewer = await auth.authenticated(request, db)
    at = int(now().timestamp())
    active = and_(Grant.viewer == viewer, Grant.revoked_at.is_(None), Grant.expiry > at)
    covering = and_(
        active,
        Grant.owner == Job.owner,
        or_(Grant.image_id == Job.image_id, Grant.image_id == auth.ALL_IMAGES),
    )
    # Only the owners who granted this viewer anything are walked (jobs are indexed by owner).
    granting = select(Grant.owner).where(active)
    query = select(Job).where(Job.owner.in_(granting), exists().where(covering))
    jobs, next_cursor = await page_of_jobs(db, query, request.query)
    scopes = {job.image_id for job in jobs} | {auth.ALL_IMAGES}
    async with db.transaction() as session:
        latest = {
            (owner, image_id): expiry
            for owner, image_id, expiry in await session.execute(
                select(Grant.owner, Grant.image_id, func.max(Grant.expiry))
                .where(active, Grant.owner.in_({job.owner for job in jobs}), Grant.image_id.in_(scopes))
                .group_by(Grant.owner, Grant.image_id)
            )
        }

    def until(job: Job) -> int | None:
        covers = [latest.get((job.owner, job.image_id)), latest.get((job.owner, auth.ALL_IMAGES))]
        return max((c for c in covers if c is not None), default=None)  # None: revoked between the reads

    return web.json_response(
        {
            "viewer": viewer,
            "images": [public(job) | {"shared_until": until(job)} for job in jobs],
            "next_cursor": next_cursor,
        }
    )
