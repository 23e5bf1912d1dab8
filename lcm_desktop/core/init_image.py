"""The starting image of an image-to-image request: read any picture safely and fit it to the requested size.

The one rule (``fit_image``), for every front end:

1. EXIF orientation is applied (a phone photo stands the way it is shown).
2. Colour: transparency is flattened onto **white** (a sketch's empty canvas is white paper, not black);
   greyscale, palette, CMYK and 1-bit pictures become RGB; 16-bit greyscale is scaled to 8 bits
   (not clipped).
3. Size: scaled to **cover** the requested width × height (the smaller scale that fills both sides,
   aspect ratio kept), then **centre-cropped** to exactly that size (Lanczos resampling).

Huge pictures never decode at full size when they need not: JPEGs decode at 1/2, 1/4 or 1/8 scale
(``Image.draft``) and every picture is first shrunk by a whole factor (``Image.reduce``) before the
exact resize, so a 10,000 × 10,000 JPEG costs a few megabytes.  Pillow's decompression-bomb limit
(``Image.MAX_IMAGE_PIXELS``), a missing file and a file that is not a picture are each one
``InvalidRequestError`` naming the file.  Plain Python and Pillow: no torch here.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path
from typing import Any

from .errors import InvalidRequestError

BACKGROUND = (255, 255, 255)  # what shows through transparent pixels
FIELD = "init_image"


def load_init_image(source: Any, width: int, height: int) -> Any:
    """``source`` (a path or a PIL image) → an RGB PIL image of exactly ``width`` × ``height``."""
    if isinstance(source, (str, Path)):
        return fit_image(open_image(source, width, height), width, height)
    return fit_image(source, width, height)


def check_image_file(path: Path | str) -> tuple[int, int]:
    """The picture's stored (width, height), read from its header only; a bad file raises before any model loads."""
    with _opened(Path(path)) as image:
        return image.size


def open_image(path: Path | str, width: int = 0, height: int = 0) -> Any:
    """Decode ``path``, at reduced scale when it is much larger than ``width`` × ``height`` (0: full size)."""
    path = Path(path)
    with _opened(path) as opened:
        try:
            return _decode(opened, width, height)
        except (OSError, ValueError, SyntaxError, struct.error) as exc:  # truncated or damaged after the header
            raise InvalidRequestError(FIELD, str(path), f"a readable picture file ({_short(exc)})") from exc


def open_image_data(data: bytes, width: int = 0, height: int = 0, *, field: str = FIELD,
                    max_pixels: int | None = None) -> Any:
    """Decode a picture held in memory (the local API's base64 upload) as ``open_image`` decodes a file; every
    failure is one ``InvalidRequestError`` naming ``field``.  ``max_pixels``: a stored size above it is refused
    from the header, before any decoding (a small PNG can hold a huge picture)."""
    with _opened(None, data=data, field=field) as opened:
        w, h = opened.size
        if max_pixels is not None and w * h > max_pixels:
            raise InvalidRequestError(field, f"a {w}x{h} picture", f"at most {max_pixels / 1e6:g} megapixels")
        try:
            return _decode(opened, width, height)
        except (OSError, ValueError, SyntaxError, struct.error) as exc:
            raise InvalidRequestError(field, "the image data", f"a readable picture ({_short(exc)})") from exc


def _decode(opened: Any, width: int, height: int) -> Any:
    from PIL import ImageOps

    image = opened
    swapped = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # the picture is stored on its side
    stored_w, stored_h = (height, width) if swapped else (width, height)
    if stored_w and stored_h and image.format == "JPEG":
        image.draft("RGB" if image.mode in ("RGB", "YCbCr") else image.mode, (stored_w, stored_h))
    image.load()
    factor = min(image.width // stored_w, image.height // stored_h) if stored_w and stored_h else 1
    if factor > 1 and image.mode in ("L", "LA", "RGB", "RGBA", "CMYK", "I", "F"):
        reduced = image.reduce(factor)
        reduced.info = dict(image.info)  # keeps the EXIF orientation for exif_transpose
        image = reduced
    image = ImageOps.exif_transpose(image)
    return image.copy() if image is opened else image  # the opened file's pixels go when it closes


def fit_image(image: Any, width: int, height: int) -> Any:
    """Any PIL image → RGB, scaled to cover ``width`` × ``height`` and centre-cropped to it (the module's rule)."""
    from PIL import Image, ImageOps

    rgb = to_rgb(image)
    if rgb.size == (width, height):
        return rgb
    factor = min(rgb.width // width, rgb.height // height)
    if factor > 1:  # a cheap whole-factor shrink first: the exact resize then works on a small picture
        rgb = rgb.reduce(factor)
    return ImageOps.fit(rgb, (width, height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def to_rgb(image: Any) -> Any:
    """8-bit RGB: transparency on white, greyscale/palette/CMYK converted, 16-bit scaled (not clipped)."""
    from PIL import Image

    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode == "I":
        wide = image.convert("I") if mode != "I" else image
        peak = 65535 if mode.startswith("I;16") or (wide.getextrema()[1] or 0) > 255 else 255
        return wide.point(lambda v: v * (255 / peak)).convert("L").convert("RGB")
    if mode == "F":
        return image.convert("L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


class _opened:
    """``Image.open`` with every way it can fail as one line naming the file."""

    def __init__(self, path: Path | None, *, data: bytes | None = None, field: str = FIELD):
        """A file at ``path``, or a picture held in memory (``data``; errors then name ``field``)."""
        self.path, self.data, self.field = path, data, field
        self.image: Any = None

    def __enter__(self) -> Any:
        import io

        from PIL import Image, UnidentifiedImageError

        path, field = self.path, self.field
        name = str(path) if path is not None else "the image data"
        if path is not None and not path.is_file():
            raise InvalidRequestError(field, name, "an existing picture file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we scale it down with care
                self.image = Image.open(path if path is not None else io.BytesIO(self.data or b""))
        except Image.DecompressionBombError as exc:
            limit = (Image.MAX_IMAGE_PIXELS or 0) * 2 / 1e6
            raise InvalidRequestError(
                field, name, f"a picture of at most {limit:.0f} megapixels (Pillow's safety limit; this one is "
                "larger — scale it down first)") from exc
        except UnidentifiedImageError as exc:
            raise InvalidRequestError(field, name, "a picture file (PNG, JPEG, WebP, BMP, TIFF, …)") from exc
        except OSError as exc:
            raise InvalidRequestError(field, name, f"a readable picture file ({_short(exc)})") from exc
        return self.image

    def __exit__(self, *exc: object) -> None:
        if self.image is not None:
            self.image.close()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
