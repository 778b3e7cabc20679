"""Decoding untrusted image bytes: a format allow-list, a pixel cap checked before any pixel is
decoded (decompression bombs refused), and RGB out."""

import io
import warnings

from PIL import Image, UnidentifiedImageError

from oracle.chain.reasons import FailureReason
from oracle.errors import HistochainError

ALLOWED_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP")
DEFAULT_MAX_PIXELS = 50_000_000


class ImageRejected(HistochainError):
    reason = FailureReason.UNSUPPORTED_IMAGE


class ImageTooLarge(ImageRejected):
    reason = FailureReason.TOO_LARGE


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge(f"{width}x{height} pixels, more than {max_pixels}")
            image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"decompression bomb refused: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageRejected(f"not a supported image ({'/'.join(ALLOWED_FORMATS)}): {exc}") from exc
    if image.format not in ALLOWED_FORMATS:
        raise ImageRejected(f"format {image.format} is not allowed")
    return image.convert("RGB")
