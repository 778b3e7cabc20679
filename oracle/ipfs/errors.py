"""What can go wrong between a CID and verified bytes; each names the on-chain failure reason."""

from oracle.chain.reasons import FailureReason
from oracle.errors import HistochainError


class IpfsError(HistochainError):
    reason = FailureReason.CONTENT_UNREACHABLE


class CidError(IpfsError):
    """Not a CID, or a CID this oracle cannot verify (codec or hash function unsupported)."""

    reason = FailureReason.INVALID_CID


class ContentNotFound(IpfsError):
    """Every gateway answered 404."""


class GatewayUnavailable(IpfsError):
    """No gateway gave an answer (timeouts, connection errors, 5xx) within the retries."""


class ContentTooLarge(IpfsError):
    reason = FailureReason.TOO_LARGE


class ContentMismatch(IpfsError):
    """The bytes do not hash to the CID: altered content, a truncated DAG, or foreign blocks."""

    reason = FailureReason.CONTENT_MISMATCH


class WrongAnswer(ContentMismatch):
    """A gateway's answer that is not the content (bytes that do not hash to their CID, another
    root, a truncated or padded CAR, broken framing): the gateway failed, the content may be fine.
    Only content that every gateway answers with, correctly hashed, can be a verdict."""


class TooManyBlocks(ContentMismatch):
    """More blocks than a CAR of that length may hold: a DAG of tiny blocks, or a gateway padding
    its answer. A verdict only when every gateway answers so."""


class PinningError(IpfsError):
    """An upload was refused or answered with something that is not a pin result."""


class TransientAnswer(IpfsError):
    """A 5xx, 408 or 429: worth asking again; never leaves a retry loop."""
