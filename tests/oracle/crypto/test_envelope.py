"""The envelope in both languages: the committed vectors (tests/vectors/envelope.json) open alike in
Python and in the page's code (run in Node), fresh envelopes cross both ways, the patient key and
the binding line are derived and refused identically, and every refusal names its on-chain reason."""

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pyrage
import pytest
from eth_account.messages import encode_defunct
from PIL import Image
from pyrage import x25519

from oracle.chain.anvil_accounts import dev_account
from oracle.chain.reasons import FailureReason
from oracle.chain.registry import Status, image_id_for
from oracle.crypto.envelope import (
    MAX_HEADER_BYTES,
    MAX_RECIPIENTS,
    MAX_STANZAS,
    Binding,
    EnvelopeError,
    WrongBinding,
    check_binding,
    open_envelope,
    parse_binding,
    seal,
)
from oracle.crypto.keys import (
    KeyFormatError,
    key_message,
    key_of_recipient,
    load_identity,
    patient_identity,
    recipient_of_key,
    write_identity,
)
from oracle.errors import ConfigError
from tests.oracle.adversarial.hostile import padded_header
from tests.vectors.make_envelope import node, small_png

VECTORS: dict[str, Any] = json.loads((Path(__file__).parents[2] / "vectors" / "envelope.json").read_text())


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def identities() -> dict[str, str]:
    return {"oracle": VECTORS["oracle"]["identity"], "patient": VECTORS["patient"]["identity"]}


@pytest.mark.parametrize("made_by", ["js", "python"])
@pytest.mark.parametrize("holder", ["oracle", "patient"])
def test_the_committed_envelopes_open_alike_in_both_languages(made_by: str, holder: str) -> None:
    envelope = VECTORS["envelopes"][made_by]
    opened = open_envelope(unb64(envelope), [x25519.Identity.from_str(identities()[holder])])
    in_js = node("open", {"envelope": envelope, "identity": identities()[holder]})
    assert opened.binding.model_dump(exclude_none=True) == in_js["binding"] == VECTORS["binding"]
    assert opened.image == unb64(in_js["image"]) == unb64(VECTORS["image"])
    assert hashlib.sha256(opened.image).hexdigest() == VECTORS["image_sha256"]
    assert opened.binding.line() == unb64(VECTORS["binding_line"])


def test_fresh_envelopes_cross_both_ways() -> None:
    image = small_png()
    oracle = x25519.Identity.generate()
    binding = Binding.of(dev_account(3).address, 1, dev_account(9).address, "image/png", len(image))
    from_python = seal(image, binding, [str(oracle.to_public())])
    assert unb64(node("open", {"envelope": b64(from_python), "identity": str(oracle)})["image"]) == image
    recipients = [str(oracle.to_public())]
    from_js = node(
        "seal",
        {"image": b64(image), "binding": binding.model_dump(exclude_none=True), "recipients": recipients},
    )
    opened = open_envelope(unb64(from_js["envelope"]), [oracle])
    assert (opened.binding, opened.image) == (binding, image)


def test_the_patient_key_comes_from_the_same_signature_in_both_languages() -> None:
    patient = VECTORS["patient"]
    message = key_message(VECTORS["chain_id"], VECTORS["registry"])
    assert message == patient["message"]
    signature = bytes(dev_account(2).sign_message(encode_defunct(text=message)).signature)
    assert "0x" + signature.hex() == patient["signature"]  # deterministic (RFC 6979): any device, same key
    identity = patient_identity(signature)
    assert (str(identity), str(identity.to_public())) == (patient["identity"], patient["recipient"])
    in_js = node(
        "derive",
        {"signature": patient["signature"], "chainId": VECTORS["chain_id"], "registry": VECTORS["registry"]},
    )
    assert (in_js["message"], in_js["identity"], in_js["recipient"]) == (
        message,
        patient["identity"],
        patient["recipient"],
    )
    wallet_v = signature[:64] + bytes([signature[64] - 27])  # wallets that write v as 0/1
    assert str(patient_identity(wallet_v)) == patient["identity"]
    with pytest.raises(KeyFormatError):
        patient_identity(signature[:64])


def test_oracle_keys_travel_as_bytes32_and_age_recipients_alike() -> None:
    oracle = VECTORS["oracle"]
    assert recipient_of_key(bytes.fromhex(oracle["key"][2:])) == oracle["recipient"]
    assert "0x" + key_of_recipient(oracle["recipient"]).hex() == oracle["key"]
    in_js = node("keys", {"keys": [oracle["key"]], "recipients": [oracle["recipient"]]})
    assert in_js == {"recipients": [oracle["recipient"]], "keys": [oracle["key"]]}
    for wrong in (oracle["identity"], "age1notakey", VECTORS["patient"]["address"]):
        with pytest.raises(KeyFormatError):
            key_of_recipient(wrong)


@pytest.mark.parametrize("why", sorted(VECTORS["refused_binding_lines"]))
def test_both_languages_refuse_the_same_binding_lines(why: str) -> None:
    line = VECTORS["refused_binding_lines"][why]
    with pytest.raises(EnvelopeError) as refused:
        parse_binding(unb64(line))
    assert refused.value.reason is FailureReason.NOT_DECRYPTABLE
    assert node("parse", {"line": line})["error"] == "EnvelopeError"
    assert node("parse", {"line": VECTORS["binding_line"]})["binding"] == VECTORS["binding"]


def test_the_page_and_the_oracle_name_a_record_alike() -> None:
    pairs = [(dev_account(i).address, cid) for i in (2, 3) for cid in ("bafkreitest", VECTORS["registry"])]
    assert node("ids", {"pairs": pairs})["ids"] == [image_id_for(owner, cid) for owner, cid in pairs]
    assert len({image_id_for(owner, cid) for owner, cid in pairs}) == 4


def test_the_pages_status_and_failure_reasons_are_the_oracles() -> None:
    constants = node("constants", {})
    assert constants["status"] == {s.name.title(): s.value for s in Status}
    assert constants["failureReasons"] == [r.value for r in FailureReason]
    assert constants["notTissue"] == FailureReason.NOT_TISSUE


def sealed_for(oracle: x25519.Identity, image: bytes, **changes: Any) -> bytes:
    binding = Binding.of(dev_account(2).address, 313370, dev_account(9).address, "image/png", len(image))
    return seal(image, binding.model_copy(update=changes), [str(oracle.to_public())])


def test_what_the_oracle_cannot_open_names_its_reason() -> None:
    oracle, stranger = x25519.Identity.generate(), x25519.Identity.generate()
    image = small_png()
    envelope = sealed_for(oracle, image)
    tampered = envelope[:-20] + bytes([envelope[-20] ^ 1]) + envelope[-19:]
    cases = {
        "encrypted to another key": (sealed_for(stranger, image), "not encrypted to this oracle's key"),
        "tampered": (tampered, "cannot decrypt"),
        "plaintext": (image, "plaintext images are refused"),
        "truncated": (envelope[:100], "the age header does not end within"),
    }
    for data, words in cases.values():
        with pytest.raises(EnvelopeError, match=words) as refused:
            open_envelope(data, [oracle])
        assert refused.value.reason is FailureReason.NOT_DECRYPTABLE
        assert image.hex()[:32] not in str(refused.value)
    with pytest.raises(EnvelopeError, match="the binding says 85 bytes"):
        seal(
            image + b"x",
            Binding.of(dev_account(2).address, 1, dev_account(9).address, "image/png", 85),
            ["age1"],
        )


def test_a_header_longer_than_any_the_page_makes_is_refused_before_age_parses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pyrage parses headers in quadratic time (~80 kB cost 30 s): the header is measured first."""
    oracle = x25519.Identity.generate()
    image = small_png()
    binding = Binding.of(dev_account(2).address, 1, dev_account(9).address, "image/png", len(image))
    most = [oracle.to_public(), *(x25519.Identity.generate().to_public() for _ in range(MAX_RECIPIENTS - 1))]
    honest = seal(image, binding, [str(r) for r in most])
    assert open_envelope(honest, [oracle]).image == image, "the most recipients, and rage's grease"
    with pytest.raises(EnvelopeError, match="at most 16 recipients"):
        seal(image, binding, [str(r) for r in most] + [str(x25519.Identity.generate().to_public())])

    def parsed(*_: object) -> bytes:
        raise AssertionError("pyrage was given the header")

    monkeypatch.setattr(pyrage, "decrypt", parsed)
    long = padded_header(sealed_for(oracle, image), 2, body=MAX_HEADER_BYTES)
    base = sealed_for(oracle, image)
    many = padded_header(base, MAX_STANZAS + 1 - base.count(b"\n-> "))
    for data, words in [(long, "does not end within 4096 bytes"), (many, f"has {MAX_STANZAS + 1} stanzas")]:
        with pytest.raises(EnvelopeError, match=words) as refused:
            open_envelope(data, [oracle])
        assert refused.value.reason is FailureReason.NOT_DECRYPTABLE


def test_an_envelope_made_for_another_owner_chain_or_registry_is_refused_as_such() -> None:
    oracle = x25519.Identity.generate()
    opened = open_envelope(sealed_for(oracle, small_png()), [oracle])
    owner, registry = dev_account(2).address, dev_account(9).address
    check_binding(opened.binding, owner, 313370, registry)
    for args, words in (
        ((dev_account(3).address, 313370, registry), "owner"),
        ((owner, 1, registry), "chain 313370, not 1"),
        ((owner, 313370, dev_account(8).address), "registry"),
    ):
        with pytest.raises(WrongBinding, match=words) as refused:
            check_binding(opened.binding, *args)
        assert refused.value.reason is FailureReason.WRONG_BINDING


def test_the_oracle_identity_comes_from_the_environment_or_an_owner_only_file(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "oracle-age.key"
    with pytest.raises(ConfigError, match="no oracle decryption key"):
        load_identity(None, key_file)
    written = write_identity(key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert str(load_identity(None, key_file)) == str(written)
    assert str(load_identity(str(written), tmp_path / "absent")) == str(written)
    with pytest.raises(FileExistsError):
        write_identity(key_file)
    with pytest.raises(ConfigError) as refused:
        load_identity("AGE-SECRET-KEY-1NOTAKEY", key_file)
    assert "NOTAKEY" not in str(refused.value)
    image = io.BytesIO()
    Image.new("RGB", (2, 2)).save(image, format="PNG")
    (tmp_path / "not-a-key").write_bytes(image.getvalue())
    with pytest.raises(ConfigError, match="holds no AGE-SECRET-KEY"):
        load_identity(None, tmp_path / "not-a-key")


SMALL_ORDER = [  # X25519 points of small order, as 32 little-endian bytes (RFC 7748 encodings)
    bytes(32),
    b"\x01" + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # p - 1
    bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # p
    bytes.fromhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # p + 1
]


def test_age_itself_cannot_seal_to_a_point_of_small_order() -> None:
    """Why such keys are refused before pyrage sees them: it panics (a BaseException, which no
    `except Exception` around a stage would catch) instead of raising."""
    recipient = x25519.Recipient.from_str(recipient_of_key(SMALL_ORDER[1]))
    with pytest.raises(BaseException, match="all-zero"):
        pyrage.encrypt(b"", [recipient])


@pytest.mark.parametrize("key", SMALL_ORDER + [k[:31] + bytes([k[31] | 0x80]) for k in SMALL_ORDER])
def test_a_key_of_small_order_is_refused_as_a_recipient_and_as_a_reply_to(key: bytes) -> None:
    image = small_png()
    recipient = recipient_of_key(key)
    with pytest.raises(KeyFormatError, match="not a usable X25519 public key"):
        key_of_recipient(recipient)
    binding = Binding.of(dev_account(2).address, 1, dev_account(9).address, "image/png", len(image))
    with pytest.raises(KeyFormatError):
        seal(image, binding, [str(x25519.Identity.generate().to_public()), recipient])
    with pytest.raises(ValueError, match="not a usable X25519 public key"):
        Binding.of(dev_account(2).address, 1, dev_account(9).address, "image/png", len(image), recipient)
