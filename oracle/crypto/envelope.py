"""The image envelope (DESIGN v2, "Confidential images: the envelope").

age v1 to X25519 recipients (every oracle key on chain, and the patient's own). Its payload is one
line of RFC 8785 canonical JSON, the binding, then the image bytes. age authenticates the payload,
so nobody without the file key can alter the binding: the oracle refuses an envelope bound to
another owner, chain or registry than the registration it came with, which is what stops a
squatter from registering a patient's ciphertext as their own. Plaintext lives in memory only.
The page seals and opens the same way (frontend/src/envelope.mjs).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pyrage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pyrage import x25519

from oracle.chain.reasons import FailureReason
from oracle.crypto.keys import KeyFormatError, key_of_recipient, parse_recipient
from oracle.errors import HistochainError
from oracle.jcs import canonical

MAGIC = b"age-encryption.org/v1\n"
MAX_BINDING_BYTES = 512
# pyrage parses age headers in quadratic time (str4d/rage#368): ~80 kB took past the sandbox's
# 30 s. The header is bounded before it is parsed. An honest one holds a 98-byte X25519 stanza per
# recipient (the page seals to at most MAX_RECIPIENTS: the oracles and the owner) and rage's grease
# stanza (~300 bytes at most): 16 recipients made 1,705 bytes. 4 kB parse in ~0.06 s.
MAX_RECIPIENTS = 16  # the page's copy: frontend/src/envelope.mjs (tests/test_page_constants.py)
MAX_HEADER_BYTES = 4096
MAX_STANZAS = MAX_RECIPIENTS + 2  # room for grease
ADDRESS = r"^0x[0-9a-f]{40}$"
AGE_RECIPIENT = r"^age1[02-9ac-hj-np-z]{58}$"  # bech32, lower case: an X25519 public key
MediaType = Literal["image/png", "image/jpeg", "image/tiff", "image/webp", "image/bmp"]


class EnvelopeError(HistochainError):
    """Not an envelope this oracle can open: encrypted to other keys, altered, malformed, or no
    envelope at all (plaintext, refused unless a deployment accepts public research images)."""

    reason = FailureReason.NOT_DECRYPTABLE


class WrongBinding(EnvelopeError):
    """An authentic envelope made for another owner, chain or registry."""

    reason = FailureReason.WRONG_BINDING


class Binding(BaseModel):
    """The payload's first line: whose image this is, for which registry, and what follows."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    app: Literal["histochain"] = "histochain"
    version: Literal[1] = 1
    owner: str = Field(pattern=ADDRESS)
    chain_id: int = Field(gt=0, le=2**53 - 1)
    registry: str = Field(pattern=ADDRESS)
    media_type: MediaType
    length: int = Field(gt=0, le=2**53 - 1)
    reply_to: str | None = Field(
        None,
        pattern=AGE_RECIPIENT,
        description="The owner's age recipient: what the oracle makes from the image (a heat map, an "
        "upscaled image) is encrypted to it. Absent: the oracle makes nothing for the owner.",
    )

    @field_validator("reply_to")
    @classmethod
    def _a_real_key(cls, value: str | None) -> str | None:
        """The pattern admits strings whose bech32 checksum fails: those are no key to seal to."""
        if value is not None:
            try:
                key_of_recipient(value)
            except KeyFormatError as exc:
                raise ValueError(str(exc)) from None
        return value

    @classmethod
    def of(
        cls,
        owner: str,
        chain_id: int,
        registry: str,
        media_type: MediaType,
        length: int,
        reply_to: str | None = None,
    ) -> "Binding":
        return cls(
            owner=owner.lower(),
            chain_id=chain_id,
            registry=registry.lower(),
            media_type=media_type,
            length=length,
            reply_to=reply_to,
        )

    def line(self) -> bytes:
        return canonical(self.model_dump(exclude_none=True)) + b"\n"


@dataclass(frozen=True)
class Opened:
    binding: Binding
    image: bytes


def is_envelope(data: bytes) -> bool:
    return data.startswith(MAGIC)


SIGNATURES: tuple[tuple[MediaType, tuple[bytes, ...]], ...] = (
    ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ("image/jpeg", (b"\xff\xd8\xff",)),
    ("image/tiff", (b"II*\x00", b"MM\x00*")),
    ("image/bmp", (b"BM",)),
)


def media_type_of(image: bytes) -> MediaType:
    """The allow-listed type the bytes begin like (as the page sniffs it), or `EnvelopeError`."""
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "image/webp"
    for media_type, prefixes in SIGNATURES:
        if image.startswith(prefixes):
            return media_type
    raise EnvelopeError("not a PNG, JPEG, TIFF, WebP or BMP image")


def seal_image(
    image: bytes,
    owner: str,
    chain_id: int,
    registry: str,
    recipients: Sequence[str],
    reply_to: str | None = None,
) -> bytes:
    """What the page uploads for `owner`: `image` sealed with its binding to `recipients`."""
    binding = Binding.of(owner, chain_id, registry, media_type_of(image), len(image), reply_to)
    return seal(image, binding, recipients)


def seal(image: bytes, binding: Binding, recipients: Sequence[str]) -> bytes:
    """The envelope of `image` for `recipients` (`age1…`); `binding.length` must be its size."""
    if binding.length != len(image):
        raise EnvelopeError(f"the binding says {binding.length} bytes, the image has {len(image)}")
    if not recipients:
        raise EnvelopeError("an envelope needs at least one recipient")
    if len(recipients) > MAX_RECIPIENTS:
        raise EnvelopeError(f"an envelope has at most {MAX_RECIPIENTS} recipients, not {len(recipients)}")
    sealed: bytes = pyrage.encrypt(binding.line() + image, [parse_recipient(r) for r in recipients])
    return sealed


def open_envelope(data: bytes, identities: Sequence[x25519.Identity]) -> Opened:
    """The binding and the image, or `EnvelopeError` saying why not (never quoting the payload)."""
    if not is_envelope(data):
        raise EnvelopeError("not an age envelope: plaintext images are refused")
    check_header(data)
    try:
        payload: bytes = pyrage.decrypt(data, list(identities))
    except pyrage.DecryptError as exc:
        raise EnvelopeError(
            f"cannot decrypt: not encrypted to this oracle's key, or altered ({exc})"
        ) from None
    end = payload.find(b"\n", 0, MAX_BINDING_BYTES + 1)
    if end < 0:
        raise EnvelopeError(
            f"the payload does not begin with a binding line of at most {MAX_BINDING_BYTES} bytes"
        )
    binding = parse_binding(payload[: end + 1])
    image = payload[end + 1 :]
    if binding.length != len(image):
        raise EnvelopeError(f"the binding says {binding.length} bytes, the envelope holds {len(image)}")
    return Opened(binding, image)


def check_header(data: bytes) -> None:
    """Refuses, in one linear scan, an age header longer or with more stanzas than any the page
    makes, before pyrage parses it (in quadratic time)."""
    end = data.find(b"\n---", 0, MAX_HEADER_BYTES)
    if end < 0:
        raise EnvelopeError(f"the age header does not end within {MAX_HEADER_BYTES} bytes")
    stanzas = data.count(b"\n-> ", 0, end + 1)
    if stanzas > MAX_STANZAS:
        raise EnvelopeError(f"the age header has {stanzas} stanzas; at most {MAX_STANZAS} are accepted")


def parse_binding(line: bytes) -> Binding:
    """Exactly the canonical line `Binding.line` writes, or `EnvelopeError`."""
    try:
        binding = Binding.model_validate(json.loads(line))
    except (ValueError, ValidationError):
        raise EnvelopeError("the binding line is not valid") from None
    if binding.line() != line:
        raise EnvelopeError("the binding line is not in canonical form")
    return binding


def check_binding(binding: Binding, owner: str, chain_id: int, registry: str) -> None:
    """Refuses an envelope made for another registrant, chain or registry than this registration's."""
    differs = [
        f"{name} {found}, not {expected}"
        for name, found, expected in (
            ("owner", binding.owner, owner.lower()),
            ("chain", str(binding.chain_id), str(chain_id)),
            ("registry", binding.registry, registry.lower()),
        )
        if found != expected
    ]
    if differs:
        raise WrongBinding("the envelope is bound to " + "; ".join(differs))
