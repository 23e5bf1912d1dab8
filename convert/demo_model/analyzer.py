"""Deterministic reading of a generated picture: background, shape colour, shape, position, size.

``analyze(image) -> Verdict``. Every pixel is labelled with its nearest palette colour; the
most common label is the background, the most common other label the shape colour; the
shape's pixels give its position (nearest named centre), its size (bounding box) and its
class (best intersection-over-union against a circle, square and triangle drawn in the same box).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw

from convert.demo_model.data import COLOURS, IMAGE_SIZE, POSITIONS, SHAPES, SIZES, Scene

_PALETTE_NAMES = list(COLOURS)
_PALETTE = np.array([COLOURS[n] for n in _PALETTE_NAMES], dtype=np.float32)
_MIN_SHAPE_PIXELS = 12
ATTRIBUTES = ("shape_colour", "background", "shape", "position", "size")


@dataclass(frozen=True)
class Verdict:
    """What the analyzer sees; ``None`` where no shape could be found."""

    shape_colour: str | None
    background: str
    shape: str | None
    position: str | None
    size: str | None

    def matches(self, scene: Scene) -> dict[str, bool]:
        """Per-attribute exact match against the scene that was asked for."""
        return {a: getattr(self, a) == getattr(scene, a) for a in ATTRIBUTES}

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def _to_array(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    if arr.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
        arr = np.asarray(Image.fromarray(arr).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR))
    return arr


def palette_labels(arr: np.ndarray) -> np.ndarray:
    """(H, W) index of the nearest palette colour for each pixel of a (H, W, 3) uint8 image."""
    diff = arr.astype(np.float32)[:, :, None, :] - _PALETTE[None, None]
    return np.argmin((diff**2).sum(-1), axis=-1)


def _shape_template(shape: str, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    img = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
    draw = ImageDraw.Draw(img)
    if shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=1)
    elif shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=1)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=1)
    return np.asarray(img, dtype=bool)


def _classify_shape(mask: np.ndarray) -> tuple[str, int]:
    ys, xs = np.nonzero(mask)
    x0, x1 = int(np.percentile(xs, 1)), int(np.percentile(xs, 99))
    y0, y1 = int(np.percentile(ys, 1)), int(np.percentile(ys, 99))
    best, best_iou = SHAPES[0], -1.0
    for shape in SHAPES:
        tmpl = _shape_template(shape, x0, y0, x1, y1)
        iou = (tmpl & mask).sum() / max((tmpl | mask).sum(), 1)
        if iou > best_iou:
            best, best_iou = shape, iou
    return best, max(x1 - x0, y1 - y0) + 1


def analyze(image) -> Verdict:
    """Read a 64×64 picture (PIL image, uint8 HWC array, or float HWC array in [0, 1])."""
    labels = palette_labels(_to_array(image))
    counts = np.bincount(labels.ravel(), minlength=len(_PALETTE_NAMES))
    bg = int(np.argmax(counts))
    counts[bg] = 0
    fg = int(np.argmax(counts))
    if counts[fg] < _MIN_SHAPE_PIXELS:
        return Verdict(None, _PALETTE_NAMES[bg], None, None, None)
    mask = labels == fg
    ys, xs = np.nonzero(mask)
    cx, cy = xs.mean(), ys.mean()
    position = min(POSITIONS, key=lambda p: (POSITIONS[p][0] - cx) ** 2 + (POSITIONS[p][1] - cy) ** 2)
    shape, extent = _classify_shape(mask)
    small, large = SIZES["small"], SIZES["large"]
    size = "large" if extent > (small + large) else "small"  # midpoint of full extents 2·small, 2·large
    return Verdict(_PALETTE_NAMES[fg], _PALETTE_NAMES[bg], shape, position, size)
