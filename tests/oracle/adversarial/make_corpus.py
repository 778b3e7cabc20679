"""Writes tests/oracle/adversarial/corpus/: poison images and their expected on-chain reasons.

    .venv/bin/python -m tests.oracle.adversarial.make_corpus [--tries 500000]

Two kinds. Found: a seeded mutation search over small images of every allowed format, keeping the
smallest input per (format, exception type) on which Pillow itself raises something other than
the errors the old decoder expected (UnidentifiedImageError, OSError, ValueError, SyntaxError):
those were retried forever. Made: a decompression bomb, a header claiming 10^10 pixels, a cut
JPEG, a LAB TIFF, garbage behind a PNG signature. The search takes about two minutes, so the files
are committed and CI only reads them; MANIFEST.json says what each is and what it must end in."""

import argparse
import io
import json
import random
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from oracle.chain.reasons import FailureReason

CORPUS = Path(__file__).with_name("corpus")
EXPECTED = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 10, 3), np.uint8))
    grey16 = Image.fromarray(rng.integers(0, 65535, (12, 10), np.uint16))
    return {
        "png": saved(rgb, "PNG"),
        "jpeg": saved(rgb, "JPEG"),
        "tiff": saved(rgb, "TIFF"),
        "tiff-lzw": saved(rgb, "TIFF", compression="tiff_lzw"),
        "tiff16": saved(grey16, "TIFF"),
        "bmp": saved(rgb, "BMP"),
        "webp": saved(rgb, "WEBP"),
    }


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not out:
            break
        at, kind = rng.randrange(len(out)), rng.random()
        if kind < 0.5:
            out[at] = rng.randrange(256)
        elif kind < 0.7:
            del out[at : at + rng.randint(1, 16)]
        elif kind < 0.85:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            out[at] = rng.choice([0, 255, 127, 128])
    return bytes(out)


def pillow_raises(data: bytes) -> str | None:
    """The unexpected exception Pillow raises on `data`, if any."""
    try:
        image = Image.open(io.BytesIO(data), formats=("PNG", "JPEG", "TIFF", "WEBP", "BMP"))
        image.load()
        image.convert("RGB")
    except EXPECTED:
        return None
    except Exception as exc:  # noqa: BLE001 - the unexpected ones are what we are looking for
        return type(exc).__name__
    return None


def found(tries: int) -> dict[str, bytes]:
    rng, inputs, smallest = random.Random(7), seeds(), {}
    names = sorted(inputs)
    for _ in range(tries):
        name = rng.choice(names)
        data = mutate(inputs[name], rng)
        error = pillow_raises(data)
        key = f"{name}-{error}"
        if error is not None and (key not in smallest or len(data) < len(smallest[key])):
            smallest[key] = data
    return smallest


def png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def made() -> dict[str, tuple[bytes, FailureReason, str]]:
    jpeg = saved(Image.new("RGB", (300, 300), (200, 100, 50)), "JPEG")
    return {
        "bomb.png": (
            saved(Image.new("1", (10_000, 8_000)), "PNG"),
            FailureReason.TOO_LARGE,
            "80 Mpx in 100 kB",
        ),
        "header-10-gigapixels.png": (
            png_header(100_000, 100_000),
            FailureReason.TOO_LARGE,
            "IHDR claims 10^10 px",
        ),
        "cut.jpg": (jpeg[: len(jpeg) // 2], FailureReason.UNSUPPORTED_IMAGE, "a JPEG cut in half"),
        "lab.tif": (
            saved(Image.new("RGB", (8, 8)).convert("LAB"), "TIFF"),
            FailureReason.UNSUPPORTED_IMAGE,
            "LAB",
        ),
        "garbage.png": (
            b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
            FailureReason.UNSUPPORTED_IMAGE,
            "no IHDR",
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tries", type=int, default=500_000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    CORPUS.mkdir(exist_ok=True)
    manifest = {}
    for key, data in sorted(found(args.tries).items()):
        name = f"found-{key}.bin"
        (CORPUS / name).write_bytes(data)
        what = f"Pillow raises {key.rsplit('-', 1)[1]} (seeded search, {args.tries} tries)"
        manifest[name] = {"reason": FailureReason.UNSUPPORTED_IMAGE.name, "what": what}
    for name, (data, reason, what) in made().items():
        (CORPUS / name).write_bytes(data)
        manifest[name] = {"reason": reason.name, "what": what}
    (CORPUS / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(manifest)} files to {CORPUS}")


if __name__ == "__main__":
    main()
