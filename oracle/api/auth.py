"""Who may read a result document: Sign-In with Ethereum (EIP-4361) sessions, and EIP-712 grants
by which an owner lets a viewer read one image (or all of them) until an expiry."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import is_address, to_checksum_address
from siwe import SiweMessage, VerificationError, generate_nonce
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oracle.api.errors import ApiError
from oracle.api.records import BYTES32
from oracle.store.db import Database
from oracle.store.models import ApiSession, AuthNonce, Grant, Job, now

ALL_IMAGES = "0x" + "00" * 32
MAX_EXPIRY = 2**63 - 1  # the column's range; in seconds, 292 billion years
# A signature costs nothing: a grant is stored only for an owner who paid to register the image it
# names (any of theirs, for a grant of all), and at most this many of an owner's are active at once.
MAX_ACTIVE_GRANTS = 256
GRANT_TYPES = {
    "Grant": [
        {"name": "owner", "type": "address"},
        {"name": "viewer", "type": "address"},
        {"name": "imageId", "type": "bytes32"},
        {"name": "expiry", "type": "uint64"},
        {"name": "nonce", "type": "bytes32"},
    ],
    "Revocation": [
        {"name": "owner", "type": "address"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


@dataclass(frozen=True)
class AuthConfig:
    domain: str
    uri: str
    chain_id: int
    registry: str
    nonce_ttl: timedelta = timedelta(minutes=5)
    session_ttl: timedelta = timedelta(hours=1)

    def eip712_domain(self) -> dict[str, Any]:
        return {
            "name": "histochain",
            "version": "1",
            "chainId": self.chain_id,
            "verifyingContract": self.registry,
        }


def utc(moment: datetime) -> datetime:
    """`moment` as UTC: SQLite hands back naive datetimes, PostgreSQL aware ones."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def checksum(address: object) -> str:
    if not isinstance(address, str) or not is_address(address):
        raise ApiError(400, "invalid_address", f"not an Ethereum address: {address!r}")
    return to_checksum_address(address)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_nonce(db: Database, config: AuthConfig, address: str) -> dict[str, str]:
    """A SIWE message for `address` to sign, with a fresh single-use nonce."""
    issued = now()
    nonce = generate_nonce()
    message = SiweMessage(
        domain=config.domain,
        address=address,
        statement="Sign in to read your histochain results.",
        uri=config.uri,
        version="1",
        chain_id=config.chain_id,
        nonce=nonce,
        issued_at=issued.isoformat(timespec="seconds").replace("+00:00", "Z"),
        expiration_time=(issued + config.nonce_ttl).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    async with db.transaction() as session:
        # Expired nonces go as new ones come: the table holds at most what the rate limit lets in
        # during one nonce lifetime.
        await session.execute(delete(AuthNonce).where(AuthNonce.expires_at < issued))
        session.add(AuthNonce(nonce=nonce, address=address, expires_at=issued + config.nonce_ttl))
    return {"message": message.prepare_message(), "nonce": nonce}


async def verify_sign_in(db: Database, config: AuthConfig, text: str, signature: str) -> dict[str, str]:
    try:
        message = SiweMessage.from_message(message=text)
    except ValueError as exc:
        raise ApiError(400, "invalid_message", f"not a Sign-In with Ethereum message: {exc}") from exc
    if message.chain_id != config.chain_id:
        raise ApiError(
            401, "wrong_chain", f"signed for chain {message.chain_id}, this API serves {config.chain_id}"
        )
    if message.uri != config.uri:
        raise ApiError(401, "wrong_uri", f"signed for {message.uri}, this API serves {config.uri}")
    try:
        message.verify(signature, domain=config.domain, timestamp=now())
    except (VerificationError, ValueError) as exc:
        raise ApiError(401, "invalid_signature", f"sign-in refused: {type(exc).__name__}: {exc}") from exc
    address = to_checksum_address(message.address)
    async with db.transaction() as session:
        record = await session.get(AuthNonce, message.nonce)
        if record is None or record.address != address:
            raise ApiError(401, "unknown_nonce", "this nonce was not issued for this address")
        if record.used_at is not None:
            raise ApiError(401, "nonce_used", "this nonce was already used")
        if utc(record.expires_at) < now():
            raise ApiError(401, "nonce_expired", "this nonce has expired; ask for a new one")
        record.used_at = now()
        await session.execute(delete(ApiSession).where(ApiSession.expires_at < now()))
        token = secrets.token_urlsafe(32)
        expires = now() + config.session_ttl
        session.add(ApiSession(token_sha256=_hash(token), address=address, expires_at=expires))
    return {"token": token, "address": address, "expires_at": expires.isoformat()}


async def sign_out(request: web.Request, db: Database) -> str:
    """Ends the session whose token the request carries; returns its address."""
    address = await authenticated(request, db)
    async with db.transaction() as session:
        await session.execute(delete(ApiSession).where(ApiSession.token_sha256 == _hash(_token(request))))
    return address


def _token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:] if header.startswith("Bearer ") else ""


async def authenticated(request: web.Request, db: Database) -> str:
    token = _token(request)
    if not token:
        raise ApiError(401, "unauthorized", "sign in first: Authorization: Bearer <token>")
    async with db.transaction() as session:
        record = await session.get(ApiSession, _hash(token))
    if record is None or utc(record.expires_at) < now():
        raise ApiError(401, "session_expired", "unknown or expired token; sign in again")
    return record.address


async def may_read(db: Database, reader: str, job: Job) -> bool:
    if reader == job.owner:
        return True
    async with db.transaction() as session:
        grant = (
            await session.scalars(
                select(Grant).where(
                    Grant.owner == job.owner,
                    Grant.viewer == reader,
                    or_(Grant.image_id == job.image_id, Grant.image_id == ALL_IMAGES),
                    Grant.revoked_at.is_(None),
                    Grant.expiry > int(now().timestamp()),
                )
            )
        ).first()
    return grant is not None


def _signer(config: AuthConfig, primary: str, message: dict[str, Any], signature: str) -> str:
    typed = {
        "types": {"EIP712Domain": _domain_types(), primary: GRANT_TYPES[primary]},
        "primaryType": primary,
        "domain": config.eip712_domain(),
        "message": message,
    }
    try:
        return str(Account.recover_message(encode_typed_data(full_message=typed), signature=signature))
    except Exception as exc:
        raise ApiError(
            400, "invalid_signature", f"cannot recover a signer: {type(exc).__name__}: {exc}"
        ) from exc


def _domain_types() -> list[dict[str, str]]:
    return [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ]


def _bytes32(value: object, name: str) -> str:
    if not isinstance(value, str) or not BYTES32.fullmatch(value):
        raise ApiError(400, "invalid_grant", f"{name} must be 0x and 64 hex digits")
    return value.lower()


async def add_grant(db: Database, config: AuthConfig, body: dict[str, Any]) -> dict[str, Any]:
    grant, signature = body.get("grant"), body.get("signature")
    if not isinstance(grant, dict) or not isinstance(signature, str):
        raise ApiError(
            400, "invalid_grant", "expected {grant: {owner, viewer, imageId, expiry, nonce}, signature}"
        )
    owner, viewer = checksum(grant.get("owner")), checksum(grant.get("viewer"))
    image_id, nonce = _bytes32(grant.get("imageId"), "imageId"), _bytes32(grant.get("nonce"), "nonce")
    expiry = grant.get("expiry")
    if not isinstance(expiry, int) or isinstance(expiry, bool) or not 0 < expiry <= MAX_EXPIRY:
        raise ApiError(400, "invalid_grant", f"expiry must be a unix time in seconds, at most {MAX_EXPIRY}")
    if expiry <= now().timestamp():
        raise ApiError(400, "grant_expired", "the grant has already expired")
    message = {"owner": owner, "viewer": viewer, "imageId": image_id, "expiry": expiry, "nonce": nonce}
    if _signer(config, "Grant", message, signature) != owner:
        raise ApiError(403, "not_signed_by_owner", "the grant must be signed by its owner")
    async with db.transaction() as session:
        if await session.get(Grant, (owner, nonce)) is not None:
            raise ApiError(409, "grant_exists", "a grant with this owner and nonce exists")
        await _may_grant(session, owner, image_id)
        session.add(Grant(owner=owner, nonce=nonce, viewer=viewer, image_id=image_id, expiry=expiry))
    return message


async def _may_grant(session: AsyncSession, owner: str, image_id: str) -> None:
    registered = select(Job.image_id).where(Job.owner == owner)
    if image_id != ALL_IMAGES:
        registered = registered.where(Job.image_id == image_id)
    if await session.scalar(registered.limit(1)) is None:
        which = "any image" if image_id == ALL_IMAGES else "this image"
        raise ApiError(
            403, "not_registered_by_owner", f"the owner has not registered {which} with this oracle"
        )
    active = (
        select(func.count())
        .select_from(Grant)
        .where(Grant.owner == owner, Grant.revoked_at.is_(None), Grant.expiry > int(now().timestamp()))
    )
    if (await session.scalar(active) or 0) >= MAX_ACTIVE_GRANTS:
        raise ApiError(
            429,
            "too_many_grants",
            f"an owner has at most {MAX_ACTIVE_GRANTS} active grants: revoke one first",
        )


async def revoke_grant(db: Database, config: AuthConfig, body: dict[str, Any]) -> dict[str, Any]:
    revocation, signature = body.get("revocation"), body.get("signature")
    if not isinstance(revocation, dict) or not isinstance(signature, str):
        raise ApiError(400, "invalid_grant", "expected {revocation: {owner, nonce}, signature}")
    owner, nonce = checksum(revocation.get("owner")), _bytes32(revocation.get("nonce"), "nonce")
    if _signer(config, "Revocation", {"owner": owner, "nonce": nonce}, signature) != owner:
        raise ApiError(403, "not_signed_by_owner", "a revocation must be signed by the grant's owner")
    async with db.transaction() as session:
        result = await session.execute(
            update(Grant)
            .where(Grant.owner == owner, Grant.nonce == nonce, Grant.revoked_at.is_(None))
            .values(revoked_at=now())
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise ApiError(404, "grant_not_found", "no active grant with this owner and nonce")
    return {"owner": owner, "nonce": nonce, "revoked": True}
