"""Tables. One row per image: the chain is the source of truth, this row is what the oracle
knows and has done about it, so a crash at any point resumes without losing or repeating work."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def now() -> datetime:
    return datetime.now(UTC)


class JobState(StrEnum):
    """queued → classified → submitted → confirmed; or failed (reason) → submitted → confirmed;
    or superseded when the chain shows the image no longer pending (another oracle,
    a cancellation) or never registered (a reorg)."""

    QUEUED = "queued"
    CLASSIFIED = "classified"
    FAILED = "failed"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    SUPERSEDED = "superseded"


class Outcome(StrEnum):
    RESULT = "result"
    FAILURE = "failure"


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


class Job(Base):
    __tablename__ = "jobs"

    image_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    cid: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    model_id: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    block_hash: Mapped[str] = mapped_column(String(66))
    registration_tx: Mapped[str] = mapped_column(String(66))
    state: Mapped[JobState] = mapped_column(String(16), index=True, default=JobState.QUEUED)
    outcome: Mapped[Outcome | None] = mapped_column(String(8), default=None)
    failure_reason: Mapped[int | None] = mapped_column(Integer, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    content_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    document: Mapped[dict[str, object] | None] = mapped_column(JSON, default=None)
    result_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    submit_tx: Mapped[str | None] = mapped_column(String(66), default=None)
    confirmed_block: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class SignedDocument(Base):
    """Every result document the oracle signed into a transaction, kept even after a reorg starts
    another attempt: a transaction returned to the mempool may still land and commit to it."""

    __tablename__ = "signed_documents"

    image_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    result_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    document: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=now)


class Strike(Base):
    """How often the sandbox killed a worker over one image: past a few, the image has its verdict
    (kept across restarts, so a poison image cannot be retried forever by restarting)."""

    __tablename__ = "strikes"

    image_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class Checkpoint(Base):
    """The last block whose logs are fully turned into jobs, per listener."""

    __tablename__ = "checkpoints"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class AuthNonce(Base):
    """A Sign-In with Ethereum nonce: issued for one address, used at most once."""

    __tablename__ = "auth_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiSession(Base):
    """A bearer token (only its sha256 is kept) bound to an address until it expires."""

    __tablename__ = "api_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    expires_at: Mapped[datetime] = mapped_column()


class Grant(Base):
    """An owner's EIP-712-signed permission for a viewer to read one image's document (or all)."""

    __tablename__ = "grants"

    owner: Mapped[str] = mapped_column(String(42), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(66), primary_key=True)
    viewer: Mapped[str] = mapped_column(String(42), index=True)
    image_id: Mapped[str] = mapped_column(String(66))
    expiry: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=now)
