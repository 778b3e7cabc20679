"""Decoding untrusted image bytes: a format allow-list, a pixel cap checked before any pixel is
decoded (decompression bombs refused), every colour mode and bit depth turned into 8-bit RGB
correctly, and large images reduced while decoding.

Any exception Pillow raises on hostile bytes is a verdict (`ImageRejected`), never a retry.

Conversions: 16-bit samples are scaled (v / 257), not clipped; 32-bit integer images are read as
16-bit data (8-bit data when no sample exceeds 255); float images as 0..1 (0..255 when a sample
exceeds 1); alpha, and palette or colour-key transparency, are composited onto white (an empty
slide); palette, bilevel, grey, CMYK and YCbCr through Pillow's own conversions."""

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from oracle.chain.reasons import FailureReason
from oracle.errors import HistochainError

ALLOWED_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP")
DEFAULT_MAX_PIXELS = 50_000_000
MAX_SIDE = 2048  # far more than any model here looks at; larger images are reduced
DIRECT = {"RGB", "RGBX", "L", "1", "CMYK", "YCbCr"}
WITH_ALPHA = {"RGBA", "RGBa", "LA", "La", "PA"}
WHITE = (255, 255, 255)
# What one pixel costs in memory from decoding to 8-bit RGB, by mode: the decoded sample bytes, the
# conversion's intermediates (RGBA twice for alpha; an int32/float32 copy and a grey one for wide
# samples) and the RGB result. The pixel cap is priced at RGB's 6: a 16-bit or float image of as
# many pixels is refused from its header, before it costs its 10 to 15 bytes a pixel.
SAMPLE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "La": 2, "PA": 2, "RGB": 3, "YCbCr": 3, "I": 4, "F": 4}
WIDE = ("I;16", "I", "F")
RGB_BYTES_PER_PIXEL = 6


def bytes_per_pixel(mode: str) -> int:
    decoded = SAMPLE_BYTES.get(mode, 2 if mode.startswith("I;16") else 4)
    extra = 8 if mode in WITH_ALPHA else 5 if mode.startswith(WIDE) else 0
    return decoded + extra + 3


@dataclass(frozen=True)
class InputPolicy:
    """What one model accepts: at most `max_pixels`; a longer side than `refuse_side` refused
    (None: reduced to MAX_SIDE, for models that read a reduced copy anyway); `tissue`: the input
    gate must pass it."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    refuse_side: int | None = None
    tissue: bool = True


class ImageRejected(HistochainError):
    reason = FailureReason.UNSUPPORTED_IMAGE


class ImageTooLarge(ImageRejected):
    reason = FailureReason.TOO_LARGE


def decode(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int = MAX_SIDE,
    refuse_side: int | None = None,
) -> Image.Image:
    """8-bit RGB, at most `max_side` pixels on its longer side, or a verdict (also for a side
    longer than `refuse_side`, where given)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # corrupt-tag chatter: hostile bytes need no log
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            if image.format not in ALLOWED_FORMATS:
                raise ImageRejected(f"format {image.format} is not allowed")
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge(f"{width}x{height} pixels, more than {max_pixels}")
            if refuse_side is not None and max(width, height) > refuse_side:
                raise ImageTooLarge(f"{width}x{height} pixels, a side longer than {refuse_side}")
            if image.format == "JPEG":
                image.draft("RGB", (max_side, max_side))  # decodes at 1/2, 1/4 or 1/8 scale
            cost = image.width * image.height * bytes_per_pixel(image.mode)
            if cost > max_pixels * RGB_BYTES_PER_PIXEL:
                raise ImageTooLarge(
                    f"{width}x{height} pixels of mode {image.mode}: {cost >> 20} MiB to decode, more "
                    f"than {max_pixels * RGB_BYTES_PER_PIXEL >> 20}"
                )
            image.load()
            rgb = to_rgb8(image)
            if max(rgb.size) > max_side:
                rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            return rgb
    except ImageRejected:
        raise
    except (MemoryError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"too large to decode: {type(exc).__name__}") from None
    except Exception as exc:  # noqa: BLE001 - whatever hostile bytes make Pillow raise is one verdict
        # the decoder's own words can quote the image's bytes: only its exception's name is kept
        raise ImageRejected(
            f"not a supported image ({'/'.join(ALLOWED_FORMATS)}): {type(exc).__name__}"
        ) from None


def to_rgb8(image: Image.Image) -> Image.Image:
    mode = image.mode
    if (mode == "P" and "transparency" in image.info) or mode in WITH_ALPHA:
        return _on_white(image.convert("RGBA"))
    if mode in ("L", "RGB") and "transparency" in image.info:
        return _on_white(image.convert("RGBA"))
    if mode in DIRECT or mode == "P":
        return image.convert("RGB")
    if mode.startswith("I;16") or mode == "I":
        samples = np.asarray(image, dtype=np.int32)
        if mode == "I" and samples.size and samples.max() <= 255:
            scaled = np.clip(samples, 0, 255)
        else:
            scaled = (np.clip(samples, 0, 65535) + 128) // 257
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        samples = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        peak = 1.0 if samples.size and samples.max() <= 1.0 else 255.0
        scaled = np.clip(np.rint(samples / peak * 255.0), 0, 255)
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    raise ImageRejected(f"colour mode {mode} is not supported")


def _on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (*WHITE, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")
