"""Validation at the oracle's boundaries: image bytes, result documents, configuration, keys."""

import io
import json
from pathlib import Path

import pytest
from eth_account import Account
from PIL import Image

from oracle.chain.reasons import FailureReason
from oracle.document import ResultDocument, new_salt, verify
from oracle.errors import ConfigError
from oracle.imaging import ImageRejected, ImageTooLarge, decode
from oracle.jcs import commitment
from oracle.settings import Settings
from oracle.signer import load_signer


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "WEBP", "BMP"])
def test_allowed_formats_decode_to_rgb(fmt: str):
    image = decode(encoded(Image.new("L", (70, 46), 128), fmt))
    assert image.mode == "RGB"
    assert image.size == (70, 46)


def test_other_formats_are_refused():
    with pytest.raises(ImageRejected, match="not a supported image") as info:
        decode(encoded(Image.new("RGB", (8, 8)), "GIF"))
    assert info.value.reason is FailureReason.UNSUPPORTED_IMAGE


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50])
def test_garbage_is_refused(data: bytes):
    with pytest.raises(ImageRejected):
        decode(data)


def test_a_refusal_names_the_decoders_exception_but_never_repeats_its_words():
    """Pillow's messages can quote the bytes it choked on, and a refusal's text is stored and
    logged: of a decrypted image, only the exception's name may leave the decoder."""
    with pytest.raises(ImageRejected) as info:
        decode(b"SECRET-PIXELS " * 8)
    assert str(info.value).endswith("): UnidentifiedImageError")


def test_truncated_image_is_refused():
    data = encoded(Image.new("RGB", (300, 300), (200, 100, 50)), "JPEG")
    with pytest.raises(ImageRejected):
        decode(data[: len(data) // 2])


def test_pixel_cap_refuses_before_decoding():
    with pytest.raises(ImageTooLarge, match="more than 10000") as info:
        decode(encoded(Image.new("RGB", (200, 100)), "PNG"), max_pixels=10_000)
    assert info.value.reason is FailureReason.TOO_LARGE


def test_decompression_bomb_is_refused():
    """A 10000x8000 PNG of one colour compresses to ~100 KB and would decode to 240 MB of RGB."""
    bomb = encoded(Image.new("1", (10_000, 8_000)), "PNG")
    assert len(bomb) < 1 << 20
    with pytest.raises(ImageTooLarge):
        decode(bomb, max_pixels=50_000_000)


def document(**changes: object) -> ResultDocument:
    fields: dict[str, object] = {
        "image_id": "0x" + "ab" * 32,
        "cid": "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq",
        "content_sha256": "cd" * 32,
        "model_id": "0x" + "ef" * 32,
        "model_name": "basecnn",
        "label": "malignant",
        "probabilities": {"benign": 0.25, "malignant": 0.75},
        "threshold": 0.5,
        "oracle": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "chain_id": 313370,
        "registry": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "registration_block": 7,
        "salt": "0x" + "11" * 32,
    }
    return ResultDocument.model_validate(fields | changes)


def test_result_hash_is_keccak_of_the_canonical_document_in_any_key_order():
    doc = document()
    shuffled = dict(reversed(list(doc.canonical_dict().items())))
    assert verify(shuffled, doc.result_hash)
    assert doc.result_hash == commitment(json.loads(json.dumps(doc.canonical_dict(), sort_keys=True)))


def test_salt_changes_the_hash_and_any_edit_is_detected():
    doc = document()
    assert document(salt=new_salt()).result_hash != doc.result_hash
    tampered = doc.canonical_dict() | {"label": "benign"}
    assert not verify(tampered, doc.result_hash)


def test_settings_read_a_toml_file_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "histochain.toml"
    config.write_text(
        'gateways = ["http://a:1", "http://b:2"]\n[tuning]\nconfirmations = 3\nsubmit_batch = 8\n'
    )
    monkeypatch.setenv("HISTOCHAIN_CONFIG", str(config))
    monkeypatch.setenv("HISTOCHAIN_TUNING__SUBMIT_BATCH", "4")
    settings = Settings()
    assert settings.tuning.confirmations == 3
    assert settings.gateways == ["http://a:1", "http://b:2"]
    assert settings.tuning.submit_batch == 4
    assert settings.database == f"sqlite+aiosqlite:///{settings.data_dir / 'oracle.db'}"


def test_bad_settings_fail_at_the_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "histochain.toml"
    config.write_text("surprise = true\n[tuning]\nconfirmations = -1\n")
    monkeypatch.setenv("HISTOCHAIN_CONFIG", str(config))
    with pytest.raises(ValueError, match="confirmations") as info:
        Settings()
    assert "surprise" in str(info.value)


def test_signer_from_environment_keystore_or_dev_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HISTOCHAIN_CONFIG", str(tmp_path / "none.toml"))
    settings = Settings()
    assert load_signer(settings, settings.chain_id).address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    with pytest.raises(ConfigError, match="no signer for chain 1"):
        load_signer(settings, 1)

    account = Account.create()
    monkeypatch.setenv("HISTOCHAIN_ORACLE_PRIVATE_KEY", account.key.hex())
    assert load_signer(Settings(), 1).address == account.address
    monkeypatch.setenv("HISTOCHAIN_ORACLE_PRIVATE_KEY", "0x1234")
    with pytest.raises(ConfigError, match="not a valid private key"):
        load_signer(Settings(), 1)

    monkeypatch.delenv("HISTOCHAIN_ORACLE_PRIVATE_KEY")
    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "pw", iterations=2)))
    monkeypatch.setenv("HISTOCHAIN_ORACLE_KEYSTORE", str(keystore))
    with pytest.raises(ConfigError, match="PASSWORD"):
        load_signer(Settings(), 1)
    monkeypatch.setenv("HISTOCHAIN_ORACLE_KEYSTORE_PASSWORD", "wrong")
    with pytest.raises(ConfigError, match="cannot open keystore"):
        load_signer(Settings(), 1)
    monkeypatch.setenv("HISTOCHAIN_ORACLE_KEYSTORE_PASSWORD", "pw")
    assert load_signer(Settings(), 1).address == account.address


def test_logs_are_one_json_object_per_line_with_extras():
    import logging

    from oracle.logs import JsonFormatter

    record = logging.makeLogRecord(
        {
            "name": "histochain.oracle",
            "levelno": 30,
            "levelname": "WARNING",
            "msg": "retrying %s",
            "args": ("fetch",),
        }
    )
    record.image_id = "0xabc"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "warning"
    assert entry["msg"] == "retrying fetch"
    assert entry["logger"] == "histochain.oracle"
    assert entry["image_id"] == "0xabc"
    assert entry["ts"].endswith("+00:00")
