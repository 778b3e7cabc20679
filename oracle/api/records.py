"""An image's public record, and the one way the API pages through records: oldest registration
first, `limit` per page, `cursor` the previous page's `next_cursor`."""

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, and_, or_

from oracle.api.errors import ApiError
from oracle.chain.reasons import FailureReason
from oracle.store.db import Database
from oracle.store.models import Job, JobState

BYTES32 = re.compile(r"0x[0-9a-fA-F]{64}")  # with fullmatch: "$" would let a trailing newline in
DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() takes "²", and int() then fails
IMAGE_ID = BYTES32
PAGE_LIMIT = 100
MAX_BLOCK = 2**63 - 1  # SQLite's INTEGER


def public(job: Job) -> dict[str, Any]:
    reason = job.failure_reason
    return {
        "image_id": job.image_id,
        "cid": job.cid,
        "owner": job.owner,
        "model_id": job.model_id,
        "state": job.state,
        "outcome": job.outcome,
        "failure_reason": FailureReason(reason).name.lower() if reason else None,
        "result_hash": job.result_hash if job.state == JobState.CONFIRMED else None,
        "registration_tx": job.registration_tx,
        "registration_block": job.block_number,
        "result_tx": job.submit_tx,
        "result_block": job.confirmed_block,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }


def query_int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name, str(default))
    if not DIGITS.fullmatch(text) or not low <= int(text) <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer from {low} to {high}")
    return int(text)


async def page_of_jobs(
    db: Database, query: Select[Any], params: Mapping[str, str]
) -> tuple[list[Job], str | None]:
    """One page of `query`'s jobs, filtered by `state` when asked, and the next page's cursor."""
    limit = query_int(params, "limit", 20, 1, PAGE_LIMIT)
    state = params.get("state")
    if state is not None:
        if state not in {s.value for s in JobState}:
            raise ApiError(400, "invalid_parameter", f"state must be one of {[s.value for s in JobState]}")
        query = query.where(Job.state == state)
    cursor = params.get("cursor")
    if cursor is not None:
        block, _, image_id = cursor.partition(":")
        if not DIGITS.fullmatch(block) or int(block) > MAX_BLOCK or not IMAGE_ID.fullmatch(image_id):
            raise ApiError(400, "invalid_parameter", "cursor is not a next_cursor from this API")
        query = query.where(
            or_(Job.block_number > int(block), and_(Job.block_number == int(block), Job.image_id > image_id))
        )
    query = query.order_by(Job.block_number, Job.image_id).limit(limit + 1)
    async with db.transaction() as session:
        jobs = list((await session.scalars(query)).all())
    page, more = jobs[:limit], len(jobs) > limit
    return page, f"{page[-1].block_number}:{page[-1].image_id}" if more else None
