"""The sketch's layer types (what a layer is, the four the app uses, a brush, an undo snapshot) and the span flood
fill: the plain parts of the sketch document (``gui/sketch_document.py``), QtGui only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage

from ..core.init_image import BACKGROUND

PAPER = QColor(*BACKGROUND)  # what a cleared canvas and transparent pixels show (the engine's rule too)
FILL_TOLERANCE = 48  # a fill spreads over pixels within this much of the clicked colour (max channel difference)
OPAQUE_FORMAT = QImage.Format.Format_RGB32
LAYER_FORMAT = QImage.Format.Format_ARGB32_Premultiplied


@dataclass(frozen=True)
class LayerSpec:
    """What a layer is: its name, whether it is opaque paper (the bottom layer; otherwise it starts
    transparent) and whether it belongs to the starting picture (``composite``)."""

    name: str
    opaque: bool = False
    in_picture: bool = True

    def fresh(self, width: int, height: int) -> QImage:
        """The layer as a clear canvas has it: paper, or transparent."""
        image = QImage(width, height, OPAQUE_FORMAT if self.opaque else LAYER_FORMAT)
        image.fill(PAPER if self.opaque else QColor(Qt.GlobalColor.transparent))
        return image


BASE, PAINT, LINES, MASK = "base", "paint", "lines", "mask"
# lines (a structure control's scribble) and mask (where to repaint) are drawn over the picture, not part of it
LAYERS = (LayerSpec(BASE, opaque=True), LayerSpec(PAINT), LayerSpec(LINES, in_picture=False),
          LayerSpec(MASK, in_picture=False))


@dataclass
class Layer:
    """One layer of the document: its spec, its pixels (at the document's size) and whether it is shown.
    The document owns the pixels; a view reads them, and edits go through the document."""

    spec: LayerSpec
    image: QImage
    visible: bool = True

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Brush:
    """How a stroke draws: colour, diameter in image pixels, and whether it erases (to transparent, or to paper
    on an opaque layer)."""

    color: QColor
    size: float
    erase: bool = False


class Snapshot(NamedTuple):
    """Copies of every layer's pixels (in layer order) and the blank flag: one undo state."""

    images: tuple[QImage, ...]
    blank: bool


def fill_region(rgb: np.ndarray, x: int, y: int, tolerance: int = FILL_TOLERANCE) -> np.ndarray:
    """The 4-connected region around (x, y) whose colours are within ``tolerance`` of that pixel's: (H, W) bool.

    Written here because neither Qt nor Pillow fills fast (Pillow's ``ImageDraw.floodfill`` visits pixels in
    Python, about a second for a large region at 512²) and scipy is not in the app bundle: a span fill, where
    numpy finds each row's runs of similar pixels and Python visits runs (a few thousand at 512²), not pixels.
    """
    similar = np.abs(rgb.astype(np.int16) - rgb[y, x].astype(np.int16)).max(axis=2) <= tolerance
    height = similar.shape[0]
    runs = []  # per row: (starts, ends) of runs of similar pixels, ends exclusive
    for row in similar:
        edges = np.diff(np.concatenate(([0], row.view(np.int8), [0])))
        runs.append((np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))
    mask = np.zeros_like(similar)
    seen: set[tuple[int, int]] = set()
    first = int(np.searchsorted(runs[y][1], x, side="right"))  # the run holding x (the clicked pixel is similar)
    todo = [(y, first)]
    while todo:
        r, i = todo.pop()
        if (r, i) in seen:
            continue
        seen.add((r, i))
        s, e = runs[r][0][i], runs[r][1][i]
        mask[r, s:e] = True
        for nr in (r - 1, r + 1):
            if 0 <= nr < height:
                starts, ends = runs[nr]
                lo = int(np.searchsorted(ends, s, side="right"))  # first run ending after s
                hi = int(np.searchsorted(starts, e, side="left"))  # runs starting before e
                todo.extend((nr, j) for j in range(lo, hi) if (nr, j) not in seen)
    return mask


def _owned(image: QImage, format: QImage.Format) -> QImage:
    """A deep copy of ``image`` in ``format`` (Qt hands back a shared image when the format already matches)."""
    return image.copy() if image.format() == format else image.convertToFormat(format)
