"""Every colour mode and bit depth of one picture decodes to the same 8-bit RGB, and so to the same
prediction; transparency lands on white; large images are reduced; and whatever the bytes, the
decoder ends in an image or a typed verdict."""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from oracle.imaging import ImageRejected, ImageTooLarge, decode
from oracle.ml import checkpoint
from oracle.ml.data.synth import synth_png
from oracle.ml.inference import Predictor


def png16(samples: np.ndarray) -> bytes:
    """A 16-bit PNG (grey, grey+alpha, RGB or RGBA), written by hand: Pillow writes only 8-bit RGB."""
    height, width = samples.shape[:2]
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    rows = samples.reshape(height, width * channels).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    """A synthetic slide with at most 255 colours, so that even a palette holds it exactly."""
    slide = Image.open(io.BytesIO(synth_png(np.random.default_rng(7), malignant=True))).convert("RGB")
    return slide.quantize(255, dither=Image.Dither.NONE).convert("RGB")


def colour_variants(picture: Image.Image) -> dict[str, bytes]:
    rgb = np.asarray(picture)
    opaque = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    palette = picture.quantize(255, dither=Image.Dither.NONE)
    palette.info["transparency"] = 255  # an unused index: nothing is transparent
    return {
        "RGB, 8-bit PNG": saved(picture, "PNG"),
        "RGB, 16-bit PNG": png16(rgb.astype(np.uint16) * 257),
        "RGBA, 16-bit PNG, opaque": png16(opaque.astype(np.uint16) * 257),
        "RGBA, 8-bit PNG, opaque": saved(Image.fromarray(opaque, "RGBA"), "PNG"),
        "P with transparency, PNG": saved(palette, "PNG", transparency=255),
        "CMYK, TIFF": saved(picture.convert("CMYK"), "TIFF"),
        "RGB, TIFF": saved(picture, "TIFF"),
        "RGB, BMP": saved(picture, "BMP"),
        "RGB, lossless WebP": saved(picture, "WEBP", lossless=True),
    }


def grey_variants(picture: Image.Image) -> dict[str, bytes]:
    grey = np.asarray(picture.convert("L"))
    return {
        "L, 8-bit PNG": saved(Image.fromarray(grey, "L"), "PNG"),
        "L, 16-bit PNG (I;16)": png16(grey.astype(np.uint16) * 257),
        "LA, 16-bit PNG, opaque": png16(
            np.dstack([grey, np.full(grey.shape, 255, np.uint8)]).astype(np.uint16) * 257
        ),
        "LA, 8-bit PNG, opaque": saved(
            Image.fromarray(np.dstack([grey, np.full(grey.shape, 255, np.uint8)]), "LA"), "PNG"
        ),
        "I, 32-bit TIFF": saved(Image.fromarray(grey.astype(np.int32) * 257, "I"), "TIFF"),
        "F, 32-bit float TIFF in 0..1": saved(Image.fromarray(grey.astype(np.float32) / 255, "F"), "TIFF"),
    }


@pytest.mark.parametrize("family", ["colour", "grey"])
def test_every_mode_and_depth_of_one_picture_decodes_to_the_same_pixels(
    picture: Image.Image, family: str
) -> None:
    variants = colour_variants(picture) if family == "colour" else grey_variants(picture)
    reference = np.asarray(picture if family == "colour" else picture.convert("L").convert("RGB"))
    for name, data in variants.items():
        decoded = decode(data)
        assert decoded.mode == "RGB", name
        assert np.array_equal(np.asarray(decoded), reference), name


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    from oracle.ml.data.synth import synthesize
    from oracle.ml.train import TrainConfig, train

    data, out = tmp_path_factory.mktemp("synth"), tmp_path_factory.mktemp("model") / "basecnn"
    synthesize(data, 24, 2, seed=5, progress=False)
    train(TrainConfig(model="basecnn", data=data, out=out, epochs=4, image_size=32, progress=False))
    return Predictor(checkpoint.load(out, "cpu"), "cpu")


def test_every_mode_and_depth_gets_the_same_label_and_probability(
    picture: Image.Image, predictor: Predictor
) -> None:
    lossy = {"YCbCr, TIFF": saved(picture.convert("YCbCr"), "TIFF")}  # within a few levels of RGB
    for variants in (colour_variants(picture) | lossy, grey_variants(picture)):
        names = list(variants)
        probabilities = predictor.predict([decode(variants[name]) for name in names])
        reference = float(probabilities[0])
        for name, p in zip(names, probabilities, strict=True):
            assert abs(float(p) - reference) <= 0.02, (name, float(p), reference)
            assert (float(p) >= 0.5) == (reference >= 0.5), name
    # the model does tell pictures apart: the 16-bit grey clipped to white, as before, is another picture
    clipped = Image.open(io.BytesIO(grey_variants(picture)["L, 16-bit PNG (I;16)"])).convert("RGB")
    grey = decode(grey_variants(picture)["L, 8-bit PNG"])
    assert np.asarray(clipped).mean() > 250 > np.asarray(grey).mean()


def test_transparent_pixels_land_on_white() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red-ish, bottom half fully transparent
    decoded = np.asarray(decode(saved(Image.fromarray(rgba, "RGBA"), "PNG")))
    assert (decoded[:2] == (200, 0, 0)).all()
    assert (decoded[2:] == 255).all()
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    decoded = np.asarray(decode(saved(palette, "PNG", transparency=1)))
    assert (decoded == 255).all()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_large_images_are_reduced_while_decoding(fmt: str) -> None:
    big = Image.new("RGB", (6000, 3000), (180, 90, 160))
    decoded = decode(saved(big, fmt))
    assert max(decoded.size) == 2048
    assert decoded.size[0] == 2 * decoded.size[1]


@pytest.mark.parametrize(("mode", "fmt"), [("I;16", "PNG"), ("F", "TIFF"), ("I", "TIFF")])
def test_wide_samples_are_priced_by_their_bytes_and_refused_from_the_header(
    mode: str, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 16-bit or float image within the pixel cap costs 10 to 12 bytes a pixel to decode, not
    8-bit RGB's 6: such a file of a few hundred kB held 1.2 GB for seconds before. Its header
    says enough to refuse it; an RGB image of as many pixels is decoded as before."""
    cap = 1_000_000
    wide, rgb = (
        saved(Image.new(mode, (1000, 900)), fmt),
        saved(Image.new("RGB", (1000, 900), (180, 90, 160)), fmt),
    )
    assert decode(rgb, max_pixels=cap).size == (1000, 900)

    def decoded(*_: object) -> None:
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", decoded)
    with pytest.raises(ImageTooLarge, match=f"1000x900 pixels of mode {mode}: .* MiB to decode, more than 5"):
        decode(wide, max_pixels=cap)


def test_an_unsupported_colour_mode_is_a_verdict() -> None:
    lab = saved(Image.new("RGB", (8, 8)).convert("LAB"), "TIFF")
    with pytest.raises(ImageRejected, match="colour mode LAB"):
        decode(lab)


SEEDS = {
    fmt: saved(Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 24, 3), np.uint8)), fmt)
    for fmt in ("PNG", "JPEG", "TIFF", "BMP", "WEBP")
}


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_mutation_of_an_image_ends_in_an_image_or_a_verdict(data: st.DataObject) -> None:
    image = bytearray(SEEDS[data.draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(image) - 1))
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "set"]))
        if kind == "flip":
            image[at] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del image[at : at + data.draw(st.integers(1, 32))]
        elif kind == "insert":
            image[at:at] = data.draw(st.binary(min_size=1, max_size=32))
        else:
            image[at] = data.draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]))
    try:
        decoded = decode(bytes(image), max_pixels=4_000_000)
    except ImageRejected:
        return
    assert decoded.mode == "RGB"


@settings(max_examples=300, deadline=2000)
@given(st.binary(max_size=2048))
def test_any_bytes_end_in_an_image_or_a_verdict(data: bytes) -> None:
    try:
        decoded = decode(data, max_pixels=4_000_000)
    except ImageRejected:
        return
    assert decoded.mode == "RGB"
