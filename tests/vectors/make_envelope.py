"""Writes tests/vectors/envelope.json, the envelope vectors both languages' tests read:
`.venv/bin/python -m tests.vectors.make_envelope`. Run it only to change the format: age encryption
is randomised, so every run gives other envelopes (the tests check meaning, not these bytes).

The oracle identity in the file is a test-vector key that protects nothing; the patient signs with
anvil's well-known test account 2."""

import base64
import hashlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from eth_account.messages import encode_defunct
from PIL import Image
from pyrage import x25519

from oracle import REPO_ROOT
from oracle.chain.anvil_accounts import dev_account
from oracle.crypto.envelope import Binding, seal
from oracle.crypto.keys import key_message, patient_identity, public_key

OUT = Path(__file__).with_name("envelope.json")
HARNESS = Path(__file__).with_name("envelope.mjs")
CHAIN_ID = 313370
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def node(command: str, payload: dict[str, Any]) -> dict[str, Any]:
    """One call into the page's envelope code (tests/vectors/envelope.mjs)."""
    done = subprocess.run(
        ["node", str(HARNESS), command],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def small_png() -> bytes:
    pixels = np.linspace(0, 255, 8 * 8 * 3).astype(np.uint8).reshape(8, 8, 3)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def flip(char: str) -> str:
    """Another bech32 character: the string keeps the pattern and loses its checksum."""
    return "q" if char != "q" else "p"


def bad_binding_lines(good: bytes) -> dict[str, bytes]:
    """Lines both languages must refuse, each for one reason."""
    binding = json.loads(good)
    spaced = json.dumps(binding, sort_keys=True).encode() + b"\n"
    return {
        "not in canonical form (spaces)": spaced,
        "keys out of order": json.dumps(dict(reversed(binding.items())), separators=(",", ":")).encode()
        + b"\n",
        "an extra field": good.replace(b'{"app"', b'{"a":1,"app"'),
        "a missing field": good.replace(b',"version":1', b""),
        "an upper-case owner": good.replace(binding["owner"].encode(), binding["owner"].upper().encode()),
        "a chain id written as a float": good.replace(b'"chain_id":313370', b'"chain_id":313370.0'),
        "a chain id as a string": good.replace(b'"chain_id":313370', b'"chain_id":"313370"'),
        "a media type outside the allow-list": good.replace(b"image/png", b"image/svg+xml"),
        "version 2": good.replace(b'"version":1', b'"version":2'),
        "a duplicate key": good.replace(b'{"app"', b'{"app":"x","app"'),
        "not UTF-8": good.replace(b"histochain", b"histo\xffchain"),
        "not JSON": b"histochain\n",
        "a reply_to that is not an age recipient": good.replace(
            binding["reply_to"].encode(), binding["reply_to"][:-1].encode() + b"b1"
        ),
        "a reply_to whose bech32 checksum fails": good.replace(
            binding["reply_to"].encode(), (binding["reply_to"][:-1] + flip(binding["reply_to"][-1])).encode()
        ),
        "a null reply_to": good.replace(b'"' + binding["reply_to"].encode() + b'"', b"null"),
    }


def main() -> None:
    image = small_png()
    patient = dev_account(2)
    message = key_message(CHAIN_ID, REGISTRY)
    signature = bytes(patient.sign_message(encode_defunct(text=message)).signature)
    patient_key = patient_identity(signature)
    oracle = x25519.Identity.generate()
    reply_to = str(patient_key.to_public())
    binding = Binding.of(patient.address, CHAIN_ID, REGISTRY, "image/png", len(image), reply_to)
    recipients = [str(oracle.to_public()), reply_to]
    from_js = node(
        "seal",
        {"image": b64(image), "binding": binding.model_dump(exclude_none=True), "recipients": recipients},
    )
    line = binding.line()
    vectors = {
        "about": "histochain envelope vectors (tests/vectors/make_envelope.py); the oracle key is a test key",
        "chain_id": CHAIN_ID,
        "registry": REGISTRY,
        "patient": {
            "address": patient.address,
            "message": message,
            "signature": "0x" + signature.hex(),
            "identity": str(patient_key),
            "recipient": str(patient_key.to_public()),
        },
        "oracle": {
            "identity": str(oracle),
            "recipient": str(oracle.to_public()),
            "key": "0x" + public_key(oracle).hex(),
        },
        "image": b64(image),
        "image_sha256": hashlib.sha256(image).hexdigest(),
        "binding": binding.model_dump(exclude_none=True),
        "binding_line": b64(line),
        "envelopes": {"js": from_js["envelope"], "python": b64(seal(image, binding, recipients))},
        "refused_binding_lines": {why: b64(bad) for why, bad in bad_binding_lines(line).items()},
    }
    OUT.write_text(json.dumps(vectors, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
