"""CID parsing at the boundary: every accepted CID is one we can verify, in one canonical form."""

import pytest
from multiformats import CID, multihash

from oracle.chain.reasons import FailureReason
from oracle.ipfs import cid as cids
from oracle.ipfs.errors import CidError, ContentMismatch, ContentNotFound, ContentTooLarge


def test_cidv0_is_normalised_to_cidv1_base32():
    v0 = "QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX"
    v1 = cids.normalise(v0)
    assert v1.startswith("bafybei")
    decoded = CID.decode(v1)
    assert (decoded.version, decoded.codec.name) == (1, "dag-pb")
    assert decoded.digest == CID.decode(v0).digest
    assert cids.normalise(v1) == v1


def test_other_bases_of_the_same_cid_normalise_alike():
    v1 = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    base36 = CID.decode(v1).encode("base36")
    assert cids.normalise(base36) == v1


def test_raw_cid_of_bytes():
    assert cids.raw_cid(b"hello") == "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"


@pytest.mark.parametrize(
    "text",
    ["", "hello", "Qm", "bafkrei", " bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq", "b" * 300],
)
def test_malformed_cids_are_refused(text):
    with pytest.raises(CidError, match="not a CID"):
        cids.parse(text)


def test_unverifiable_codec_and_hash_are_refused():
    dag_cbor = CID("base32", 1, "dag-cbor", multihash.digest(b"x", "sha2-256"))
    with pytest.raises(CidError, match="codec dag-cbor"):
        cids.parse(str(dag_cbor))
    blake = CID("base32", 1, "raw", multihash.digest(b"x", "blake2b-256"))
    with pytest.raises(CidError, match="hash blake2b-256"):
        cids.parse(str(blake))


def test_errors_name_their_on_chain_reason():
    assert CidError.reason is FailureReason.INVALID_CID
    assert ContentMismatch.reason is FailureReason.CONTENT_MISMATCH
    assert ContentTooLarge.reason is FailureReason.TOO_LARGE
    assert ContentNotFound.reason is FailureReason.CONTENT_UNREACHABLE
