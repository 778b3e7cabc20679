"""RFC 8785 (JCS) canonical JSON and its keccak256: how documents are committed on chain."""

from typing import Any

import rfc8785
from eth_utils.crypto import keccak


def canonical(document: Any) -> bytes:
    return rfc8785.dumps(document)


def commitment(document: Any) -> bytes:
    """keccak256 of the canonical form: the same bytes in Python, in the page and in any verifier."""
    return keccak(canonical(document))
