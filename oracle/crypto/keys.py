"""The keys an image envelope is sealed to (DESIGN v2, "Confidential images").

An age X25519 key is 32 bytes written in bech32: `age1…` for a recipient (public), `AGE-SECRET-KEY-1…`
for an identity (secret). The chain stores an oracle's recipient as its raw 32 bytes.

The patient's identity is derived, not stored: HKDF-SHA256 over the (r, s) of the wallet's
signature of `key_message`. Wallets that sign deterministically (RFC 6979: MetaMask, hardware
wallets) give the same signature, hence the same key, on any device; v is left out because
wallets write it as 0/1 or 27/28. The page (frontend/src/envelope.mjs) derives it the same way;
tests/vectors/envelope.json holds both languages to it.
"""

import os
import stat
from pathlib import Path

import bech32
from Crypto.Hash import SHA256
from Crypto.Protocol.DH import import_x25519_public_key
from Crypto.Protocol.KDF import HKDF
from eth_utils.address import to_checksum_address
from pyrage import IdentityError, RecipientError, x25519

from oracle.errors import ConfigError, HistochainError
from oracle.settings import Settings

RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"
PATIENT_KEY_SALT = b"histochain patient key"
PATIENT_KEY_INFO = b"age x25519 identity v1"


class KeyFormatError(HistochainError):
    """Not an age X25519 key (or not one of the kind asked for)."""


def _encode(hrp: str, data: bytes) -> str:
    words = bech32.convertbits(data, 8, 5)
    assert words is not None
    return bech32.bech32_encode(hrp, words)


def _decode(hrp: str, text: str) -> bytes:
    found, words = bech32.bech32_decode(text.lower())
    data = None if words is None else bech32.convertbits(words, 5, 8, False)
    if found != hrp or data is None or len(data) != 32:
        raise KeyFormatError(
            f"not an age X25519 {'identity' if hrp == IDENTITY_HRP else 'recipient'}: {text[:16]}…"
        )
    return bytes(data)


def recipient_of_key(key: bytes) -> str:
    """`age1…` for an X25519 public key as the registry stores it (bytes32)."""
    if len(key) != 32:
        raise KeyFormatError(f"an X25519 public key is 32 bytes, not {len(key)}")
    return _encode(RECIPIENT_HRP, key)


def key_of_recipient(recipient: str) -> bytes:
    """The 32 bytes the registry stores for an `age1…` recipient, refused unless a key one can
    seal to (see `check_public_key`)."""
    return check_public_key(_decode(RECIPIENT_HRP, recipient))


def check_public_key(key: bytes) -> bytes:
    """`key` unless it is no X25519 public key to seal to: a point of small order gives every
    sender the same all-zero secret, which age refuses (pyrage by panicking, the page by throwing)."""
    try:
        import_x25519_public_key(key)
    except ValueError:
        raise KeyFormatError(f"not a usable X25519 public key: 0x{key.hex()[:16]}…") from None
    return key


def identity_of_secret(secret: bytes) -> x25519.Identity:
    return x25519.Identity.from_str(_encode(IDENTITY_HRP, secret).upper())


def public_key(identity: x25519.Identity) -> bytes:
    return key_of_recipient(str(identity.to_public()))


def key_message(chain_id: int, registry: str) -> str:
    """What the patient's wallet signs to unlock (derive) the patient's key: words a person can
    read before signing. It names the chain and registry, so each deployment has its own key."""
    return (
        "histochain: unlock my private images\n"
        "\n"
        "Signing this message creates the key that encrypts my pathology images for the histochain "
        f"registry {to_checksum_address(registry)} on chain {chain_id}, so that only I and the oracle "
        "can see them. It costs no gas and sends no transaction. Sign it only on the histochain page."
    )


def patient_identity(signature: bytes) -> x25519.Identity:
    """The patient's age identity from their 65-byte signature of `key_message`."""
    if len(signature) != 65:
        raise KeyFormatError(f"a wallet signature is 65 bytes, not {len(signature)}")
    secret = HKDF(signature[:64], 32, PATIENT_KEY_SALT, SHA256, context=PATIENT_KEY_INFO)
    assert isinstance(secret, bytes)
    return identity_of_secret(secret)


def load_identity(secret: str | None, key_file: Path) -> x25519.Identity:
    """The oracle's identity: `secret` (an `AGE-SECRET-KEY-1…` from the environment) or the first
    such line of `key_file` (age-keygen's format). Never logged, never in an error message."""
    if secret is None:
        if not key_file.exists():
            raise ConfigError(
                f"no oracle decryption key: set HISTOCHAIN_ORACLE_AGE_KEY or create {key_file} "
                "(histochain oracle keygen)"
            )
        lines = [line.strip() for line in key_file.read_text(errors="replace").splitlines()]
        secret = next((line for line in lines if line.startswith("AGE-SECRET-KEY-1")), None)
        if secret is None:
            raise ConfigError(f"{key_file} holds no AGE-SECRET-KEY-1… line")
    try:
        return x25519.Identity.from_str(secret.strip())
    except IdentityError:
        raise ConfigError("the oracle decryption key is not an age X25519 identity") from None


def oracle_identity(settings: Settings) -> x25519.Identity:
    secret = settings.oracle_age_key
    return load_identity(None if secret is None else secret.get_secret_value(), settings.oracle_key_path)


def write_identity(key_file: Path) -> x25519.Identity:
    """A new identity in `key_file` (owner-only permissions), as age-keygen writes one."""
    identity = x25519.Identity.generate()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(descriptor, "w") as out:
        out.write(f"# histochain oracle decryption key\n# public key: {identity.to_public()}\n{identity}\n")
    return identity


def parse_recipient(recipient: str) -> x25519.Recipient:
    key_of_recipient(recipient)
    try:
        return x25519.Recipient.from_str(recipient)
    except RecipientError:
        raise KeyFormatError(f"not an age X25519 recipient: {recipient[:16]}…") from None
