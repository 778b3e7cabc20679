"""CIDs: parsing, normalisation to CIDv1 base32, and the CID of raw bytes."""

from multiformats import CID, multihash


def raw_cid(data: bytes) -> str:
    """CIDv1 (raw codec, sha2-256) of `data`: what Kubo gives a single-chunk file with raw leaves."""
    return str(CID("base32", 1, "raw", multihash.digest(data, "sha2-256")))
