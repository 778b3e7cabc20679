"""CIDs: parsing, normalisation to CIDv1 base32, and the CID of raw bytes."""

from multiformats import CID, multihash

from oracle.ipfs.errors import CidError

RAW = "raw"
DAG_PB = "dag-pb"
SUPPORTED_CODECS = {RAW, DAG_PB}


def parse(text: str) -> CID:
    """A CID this oracle can verify, as CIDv1 base32 (CIDv0 ``Qm…`` is accepted and converted)."""
    if not isinstance(text, str) or not text or len(text) > 256 or text != text.strip():
        raise CidError(f"not a CID: {text!r}")
    try:
        cid = CID.decode(text)
    except (ValueError, LookupError) as exc:  # multiformats raises KeyError/IndexError for garbage too
        raise CidError(f"not a CID: {text!r} ({type(exc).__name__}: {exc})") from exc
    if cid.codec.name not in SUPPORTED_CODECS:
        raise CidError(f"{text}: codec {cid.codec.name} is not verifiable here (raw or dag-pb only)")
    if cid.hashfun.name != "sha2-256":
        raise CidError(f"{text}: hash {cid.hashfun.name} is not verifiable here (sha2-256 only)")
    return cid.set(version=1, base="base32")


def normalise(text: str) -> str:
    return str(parse(text))


def raw_cid(data: bytes) -> str:
    """CIDv1 (raw codec, sha2-256) of `data`: what Kubo gives a single-chunk file with raw leaves."""
    return str(CID("base32", 1, RAW, multihash.digest(data, "sha2-256")))
