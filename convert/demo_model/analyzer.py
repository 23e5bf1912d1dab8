"""Deterministic reading of a generated picture: background, shape colour, shape, position, size.

``analyze(image) -> Verdict``. Every pixel is labelled with its nearest palette colour; the
most common label is the background, the most common other label the shape colour; the
shape's pixels give its position (nearest named centre), its size (bounding box) and its
class (its row-width profile: a triangle widens downwards, a square keeps its width, a circle narrows at both ends).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from convert.demo_model.data import COLOURS, IMAGE_SIZE, POSITIONS, SIZES, Scene

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


def palette_labels(arr: np.ndarray, palette: np.ndarray = _PALETTE) -> np.ndarray:
    """(H, W) index of the nearest palette colour for each pixel of a (H, W, 3) uint8 image."""
    diff = arr.astype(np.float32)[:, :, None, :] - palette[None, None]
    return np.argmin((diff**2).sum(-1), axis=-1)


def _classify_shape(mask: np.ndarray) -> tuple[str, int]:
    """Shape from the mask's row-width profile (robust to the soft edges a VAE decodes).

    Widths of the top and bottom quarters against the middle third: a triangle (apex up) is
    much narrower at the top than at the bottom, a square is as wide at both ends as in the
    middle, a circle narrows at both ends (ground truth: ratio 1.0 vs 0.56–0.68).
    """
    ys, xs = np.nonzero(mask)
    x0, x1 = int(np.percentile(xs, 1)), int(np.percentile(xs, 99))
    y0, y1 = int(np.percentile(ys, 1)), int(np.percentile(ys, 99))
    extent = max(x1 - x0, y1 - y0) + 1
    rows = mask[y0 : y1 + 1].sum(axis=1).astype(np.float64)
    h = len(rows)
    quarter = max(1, h // 4)
    top, bottom = rows[:quarter].mean(), rows[-quarter:].mean()
    middle = rows[h // 3 : h - h // 3].mean() if h >= 3 else rows.mean()
    if top < 0.6 * bottom:
        return "triangle", extent
    if (top + bottom) / 2 > 0.82 * middle:
        return "square", extent
    return "circle", extent


def analyze(image, colours: dict[str, tuple[int, int, int]] | None = None,
            sizes: dict[str, int] | None = None) -> Verdict:
    """Read a 64×64 picture (PIL image, uint8 HWC array, or float HWC array in [0, 1]).

    ``colours``, ``sizes``: the palette and the half-extents to read with (default: the training ones, ``COLOURS``
    and ``SIZES``; the style evaluation adds one the model never saw)."""
    names = _PALETTE_NAMES if colours is None else list(colours)
    palette = _PALETTE if colours is None else np.array([colours[n] for n in names], dtype=np.float32)
    labels = palette_labels(_to_array(image), palette)
    counts = np.bincount(labels.ravel(), minlength=len(names))
    bg = int(np.argmax(counts))
    counts[bg] = 0
    fg = int(np.argmax(counts))
    if counts[fg] < _MIN_SHAPE_PIXELS:
        return Verdict(None, names[bg], None, None, None)
    mask = labels == fg
    ys, xs = np.nonzero(mask)
    cx, cy = xs.mean(), ys.mean()
    position = min(POSITIONS, key=lambda p: (POSITIONS[p][0] - cx) ** 2 + (POSITIONS[p][1] - cy) ** 2)
    shape, extent = _classify_shape(mask)
    return Verdict(names[fg], names[bg], shape, position, _size(extent, sizes or SIZES))


def _size(extent: int, sizes: dict[str, int]) -> str:
    """The size whose full extent (2 × half-extent) is nearest: thresholds at the midpoints."""
    ordered = sorted(sizes, key=sizes.get)
    for name, bigger in zip(ordered, ordered[1:]):
        if extent <= sizes[name] + sizes[bigger]:  # midpoint of full extents 2·a, 2·b (small/large: 22)
            return name
    return ordered[-1]
