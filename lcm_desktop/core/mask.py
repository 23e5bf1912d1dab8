"""Masks for inpainting and outpainting: what a request may say about one, and the picture rules (no torch).

    Inpaint(mask=Path("m.png"), blur=4)                       # repaint where the mask is white, keep the black
    Inpaint(mask=pil_mask, area=InpaintArea.MASKED, padding=32)  # "inpaint only masked" (AUTOMATIC1111)
    Inpaint(outpaint=Outpaint.parse("left:128,top:64"))      # extend the canvas, repaint the new border

The rules, for every front end:

* **Mask**: any picture (path or PIL); it is fitted to the picture it masks by ``core.init_image``'s rule (cover,
  centre crop) and read as greyscale (transparency on white, as a sketch).  White (≥ 128) = repaint, black = keep.
  ``blur`` px: a Gaussian blur (``ImageFilter.GaussianBlur``, as diffusers' ``mask_processor.blur``) softens the
  seam of the overlay.  The latent mask the model sees is the blurred mask binarized at 0.5 and downsampled by
  nearest neighbour (``VaeImageProcessor(do_binarize=True)`` + ``F.interpolate`` in diffusers' inpaint pipeline).
  An all-black mask (nothing to repaint) is one ``InvalidRequestError``; an all-white one means plain
  image-to-image (``mask_state``).
* **Overlay** (default; ``keep_generated=False``): the saved picture is the original wherever the blurred mask is
  black, exactly, and the model's pixels blended in by the mask elsewhere (``apply_overlay``, the same PIL
  operations as diffusers' ``VaeImageProcessor.apply_overlay``).  ``keep_generated=True``: the model's pixels.
* **Whole picture** (``InpaintArea.WHOLE``): the picture is fitted to the request's size, as image-to-image.
  **Only masked** (``InpaintArea.MASKED``): the picture keeps its own size; a box around the mask, grown by
  ``padding`` px and then to the request's aspect ratio (``crop_box``), is cut out, generated at the request's
  size (the model's native size by default) and pasted back scaled — touching up a 2048² picture costs one 512²
  generation, and nothing outside the box can change.
* **Outpainting** (``Outpaint``): the picture (at its own size, centre-cropped down to multiples of 8) is put on a
  larger canvas, ``left``/``top``/``right``/``bottom`` px more (multiples of 8; the canvas at most
  ``MAX_SIDE``); the new border is filled by ``outpaint_canvas``'s rule — each new pixel takes the colour of the
  nearest edge pixel of the picture, plus Gaussian noise (σ = ``FILL_NOISE``, drawn from the request's seed) — and
  is the mask (white), with the picture black.  A user mask may be given too: then both are repainted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from .errors import InvalidRequestError
from .init_image import check_image_file, fit_image, open_image

MAX_BLUR = 64  # px; A1111's slider stops at 64
MAX_PADDING = 256  # px; A1111's slider stops at 256
MAX_PICTURE_SIDE = 4096  # "only masked" and outpainting keep the picture's own size: at most this
SIDE_MULTIPLE = 8
MAX_CANVAS_SIDE = 2048  # the request's MAX_SIDE: an outpainted canvas is generated whole
FILL_NOISE = 24.0  # σ, in 0–255 pixel units, of the noise on an outpainted border's edge colours
THRESHOLD = 128  # a mask pixel ≥ this is repainted (binarized at 0.5, as diffusers)
INPAINT_STRENGTH = 1.0  # a masked request's strength when none is given: StableDiffusionInpaintPipeline's
FIELD = "mask"
LATENT_CHANNELS = 4  # an SD/SDXL latent
INPAINT_CHANNELS = 9  # an inpainting UNet's input: latents 4 + mask 1 + masked-picture latents 4
# A converted (Core ML) inpainting UNet takes these besides ``sample`` (B, 4, h, w) and concatenates them inside:
INPAINT_INPUTS = ("mask", "masked_image_latents")  # (B, 1, h, w), (B, 4, h, w)

# AUTOMATIC1111's keys for the PNG text (the JSON chunk keeps the same pairs in ``extra``)
MASK_BLUR_KEY, INPAINT_AREA_KEY, PADDING_KEY, OUTPAINT_KEY = (
    "Mask blur", "Inpaint area", "Masked area padding", "Outpaint")


class InpaintArea(StrEnum):
    WHOLE = "whole"  # the whole picture, fitted to the request's size
    MASKED = "masked"  # a padded box around the mask, generated at the request's size and pasted back

    @property
    def a1111(self) -> str:
        return "Whole picture" if self is InpaintArea.WHOLE else "Only masked"


class MaskState(StrEnum):
    PARTIAL = "partial"  # some repainted, some kept: inpaint
    ALL_WHITE = "all-white"  # everything repainted: plain image-to-image


@dataclass(frozen=True)
class Outpaint:
    """Pixels added on each side of the picture (multiples of 8)."""

    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0

    def __post_init__(self) -> None:
        for side in ("left", "top", "right", "bottom"):
            value = getattr(self, side)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CANVAS_SIDE:
                raise InvalidRequestError("outpaint", f"{side}:{value}", f"whole pixels from 0 to {MAX_CANVAS_SIDE}")
            if value % SIDE_MULTIPLE:
                raise InvalidRequestError("outpaint", f"{side}:{value}", f"a multiple of {SIDE_MULTIPLE} pixels")
        if not any((self.left, self.top, self.right, self.bottom)):
            raise InvalidRequestError("outpaint", "0", "at least one side, e.g. left:128,top:64")

    @classmethod
    def parse(cls, text: str) -> Outpaint:
        """``"left:128,top:64"`` (sides in any order, each once) → Outpaint."""
        values: dict[str, int] = {}
        for item in str(text).split(","):
            side, _, number = item.strip().partition(":")
            side = side.strip().lower()
            if side not in ("left", "top", "right", "bottom") or side in values or not number.strip().isdigit():
                raise InvalidRequestError("outpaint", text, "SIDE:PX pairs, e.g. left:128,top:64 (sides: left, top, "
                                          "right, bottom)")
            values[side] = int(number)
        return cls(**values)

    @property
    def text(self) -> str:
        return ",".join(f"{s}:{getattr(self, s)}" for s in ("left", "top", "right", "bottom") if getattr(self, s))

    def canvas(self, width: int, height: int) -> tuple[int, int]:
        """The canvas size around a ``width`` × ``height`` picture; too large is one clear error."""
        size = (width + self.left + self.right, height + self.top + self.bottom)
        if max(size) > MAX_CANVAS_SIDE:
            raise InvalidRequestError("outpaint", self.text, f"a canvas of at most {MAX_CANVAS_SIDE} px a side "
                                      f"(the picture is {width}x{height}, the canvas would be {size[0]}x{size[1]})")
        return size


@dataclass(frozen=True)
class Inpaint:
    """What a request says about its mask.  ``mask``: a path or a PIL image (``None`` with ``outpaint`` only)."""

    mask: Any = None
    blur: int = 4
    area: InpaintArea = InpaintArea.WHOLE
    padding: int = 32
    keep_generated: bool = False  # True: the model's pixels everywhere (no overlay of the original)
    outpaint: Outpaint | None = None

    def __post_init__(self) -> None:
        mask = self.mask
        if isinstance(mask, str):
            object.__setattr__(self, "mask", Path(mask))
        elif mask is not None and not isinstance(mask, Path) and not all(
                hasattr(mask, a) for a in ("mode", "size", "convert")):
            raise InvalidRequestError(FIELD, type(mask).__name__, "a file path or a PIL image")
        if mask is None and self.outpaint is None:
            raise InvalidRequestError(FIELD, None, "a mask picture (white = repaint) or an outpaint")
        for name, high in (("mask_blur", MAX_BLUR), ("inpaint_padding", MAX_PADDING)):
            value = self.blur if name == "mask_blur" else self.padding
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
                raise InvalidRequestError(name, value, f"whole pixels from 0 to {high}")
        try:
            object.__setattr__(self, "area", InpaintArea(self.area))
        except ValueError:
            raise InvalidRequestError("inpaint_area", self.area, "whole or masked") from None
        if self.outpaint is not None and not isinstance(self.outpaint, Outpaint):
            raise InvalidRequestError("outpaint", self.outpaint, "an Outpaint(left, top, right, bottom)")

    def parameters(self) -> dict[str, str]:
        """AUTOMATIC1111's PNG keys for this mask (``Mask blur``, ``Inpaint area``, ``Masked area padding``)."""
        pairs = {MASK_BLUR_KEY: str(self.blur), INPAINT_AREA_KEY: self.area.a1111}
        if self.area is InpaintArea.MASKED:
            pairs[PADDING_KEY] = str(self.padding)
        if self.outpaint is not None:
            pairs[OUTPAINT_KEY] = self.outpaint.text
        return pairs

    def check_file(self) -> None:
        """A mask path that is missing or no picture: one line, before any model loads."""
        if isinstance(self.mask, Path):
            _as_mask_error(check_image_file, self.mask)


# -- pictures ---------------------------------------------------------------------------------------
def load_mask(source: Any, width: int, height: int, blur: int = 0) -> Any:
    """A mask (path or PIL) → greyscale ``L`` of exactly ``width`` × ``height`` (fitted by the start picture's
    rule: transparency on white, cover, centre crop), blurred by ``blur`` px."""
    from PIL import ImageFilter

    picture = _as_mask_error(open_image, source, width, height) if isinstance(source, (str, Path)) else source
    mask = fit_image(picture, width, height).convert("L")
    return mask.filter(ImageFilter.GaussianBlur(blur)) if blur else mask


def mask_state(mask: Any) -> MaskState:
    """Whether a fitted, blurred mask repaints part or all of the picture; all black is one clear error."""
    low, high = mask.getextrema()
    if high < THRESHOLD:
        raise InvalidRequestError(FIELD, "all black", "white where the picture should change (black keeps it)")
    return MaskState.ALL_WHITE if low >= THRESHOLD else MaskState.PARTIAL


def apply_overlay(mask: Any, original: Any, generated: Any) -> Any:
    """The original where the mask is black, the generated picture where it is white, blended between:
    diffusers' ``VaeImageProcessor.apply_overlay`` (without a crop), the same PIL operations."""
    from PIL import Image, ImageOps

    kept = Image.new("RGBa", original.size)
    kept.paste(original.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert("L")))
    out = generated.convert("RGBA")
    out.alpha_composite(kept.convert("RGBA"))
    return out.convert("RGB")


def crop_box(mask: Any, padding: int, width: int, height: int) -> tuple[int, int, int, int]:
    """"Only masked": the mask's bounding box (pixels ≥ 1 after blur) grown by ``padding`` px on each side, then
    grown to the aspect ratio ``width``:``height`` (centred, shifted to stay inside) and clipped to the picture —
    AUTOMATIC1111's ``get_crop_region`` + ``expand_crop_region``.  Returns (x0, y0, x1, y1), x1/y1 exclusive."""
    box = mask.point(lambda v: 255 if v else 0).getbbox()
    if box is None:
        raise InvalidRequestError(FIELD, "all black", "white where the picture should change (black keeps it)")
    pw, ph = mask.size
    x0, y0 = max(box[0] - padding, 0), max(box[1] - padding, 0)
    x1, y1 = min(box[2] + padding, pw), min(box[3] + padding, ph)
    ratio = width / height
    if (x1 - x0) / (y1 - y0) < ratio:  # too tall: widen
        x0, x1 = _grow(x0, x1, math.ceil((y1 - y0) * ratio), pw)
    else:  # too wide: heighten
        y0, y1 = _grow(y0, y1, math.ceil((x1 - x0) / ratio), ph)
    return x0, y0, x1, y1


def _grow(lo: int, hi: int, want: int, limit: int) -> tuple[int, int]:
    want = min(want, limit)
    extra = want - (hi - lo)
    lo -= extra // 2
    hi += extra - extra // 2
    if lo < 0:
        lo, hi = 0, hi - lo
    if hi > limit:
        lo, hi = lo - (hi - limit), limit
    return max(lo, 0), hi


def load_picture(source: Any) -> Any:
    """The start picture at its own size (RGB; at most ``MAX_PICTURE_SIDE`` a side) for "only masked"/outpaint."""
    from .init_image import to_rgb

    picture = open_image(source) if isinstance(source, (str, Path)) else source
    if max(picture.size) > MAX_PICTURE_SIDE:
        raise InvalidRequestError("init_image", f"{picture.width}x{picture.height}", f"at most {MAX_PICTURE_SIDE} px "
                                  "a side to inpaint at its own size (scale it down, or use --inpaint-area whole)")
    return to_rgb(picture)


def outpaint_canvas(picture: Any, spec: Outpaint, seed: int) -> tuple[Any, Any]:
    """(canvas, mask): ``picture`` centre-cropped down to multiples of 8, placed on the larger canvas whose new
    border repeats the nearest edge pixel plus Gaussian noise (σ ``FILL_NOISE``, from ``seed``); the mask is white
    on the border and black on the picture."""
    import numpy as np
    from PIL import Image

    w, h = (picture.width // SIDE_MULTIPLE) * SIDE_MULTIPLE, (picture.height // SIDE_MULTIPLE) * SIDE_MULTIPLE
    if min(w, h) < SIDE_MULTIPLE:
        raise InvalidRequestError("init_image", f"{picture.width}x{picture.height}", "at least 8x8 px to outpaint")
    if (w, h) != picture.size:
        left, top = (picture.width - w) // 2, (picture.height - h) // 2
        picture = picture.crop((left, top, left + w, top + h))
    cw, ch = spec.canvas(w, h)
    pixels = np.asarray(picture.convert("RGB"), dtype=np.float32)
    pad = ((spec.top, spec.bottom), (spec.left, spec.right), (0, 0))
    canvas = np.pad(pixels, pad, mode="edge")
    border = np.ones((ch, cw), dtype=bool)
    border[spec.top:spec.top + h, spec.left:spec.left + w] = False
    noise = np.random.default_rng(seed).normal(0.0, FILL_NOISE, canvas.shape).astype(np.float32)
    canvas[border] += noise[border]
    image = Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), "RGB")
    return image, Image.fromarray((border * 255).astype(np.uint8), "L")


def _as_mask_error(function, *args):
    """The start picture's reader, its errors said of the mask."""
    try:
        return function(*args)
    except InvalidRequestError as exc:
        raise InvalidRequestError(FIELD, exc.value, exc.allowed) from None
