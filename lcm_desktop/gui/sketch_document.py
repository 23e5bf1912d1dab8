"""The sketch document: the picture an image-to-image request starts from, apart from any widget.

Layers are named and stacked bottom to top, each with its own visibility.  Today: ``base`` (paper, an opened
picture or an applied result) and ``paint`` (the strokes over it).  More layers — ``lines`` for structure
control, ``mask`` for inpainting — are more ``LayerSpec`` entries (a mask with ``in_picture=False``: shown,
never part of the starting picture), not new special cases.  ``composite()`` flattens the visible layers that
belong to the picture; a view draws ``layers`` one over the other itself.

The revision rule: ``revision`` grows by one and ``changed`` is emitted once (carrying nothing) for every real
change — an edit that alters some layer's pixels or the blank flag (each stroke segment that draws something,
a fill, a clear, a new picture), a new size, a layer shown or hidden, and every undo or redo (even back to an
earlier state: for Live it is a new input all the same).  An edit that leaves every layer and the blank flag
as they were is no change: no revision, no signal, no undo step — a stroke outside the picture, erasing where
nothing is painted, filling a region with its own colour, clearing a canvas that is already clear paper,
opening the picture that is already there, resizing to the same size.

Undo: each edit (a whole stroke, a fill, a clear, a new picture) is one ``QUndoStack`` step holding copies of
every layer before and after, cheap at these sizes (a 512² layer is 1 MB).  A new size starts the history
over.  Coordinates are image pixels.  QtCore and QtGui only: the document works under a bare QGuiApplication.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QUndoCommand, QUndoStack

from ..core.init_image import fit_image
from .images import pil_to_qimage, qimage_to_pil, qimage_to_rgba, rgba_to_qimage
from .sketch_layers import (  # noqa: F401 — re-exported: the document's public types
    BASE,
    FILL_TOLERANCE,
    LAYER_FORMAT,
    LAYERS,
    LINES,
    MASK,
    OPAQUE_FORMAT,
    PAINT,
    PAPER,
    Brush,
    Layer,
    LayerSpec,
    Snapshot,
    _owned,
    fill_region,
)


@dataclass
class _Stroke:
    layer: Layer
    brush: Brush
    text: str
    before: Snapshot
    last: QPointF
    drew: bool = False


class _Step(QUndoCommand):
    """One edit: the document before and after.  Pushed once the edit is drawn, so the first redo does nothing."""

    def __init__(self, document: SketchDocument, text: str, before: Snapshot, after: Snapshot):
        super().__init__(text)
        self._document, self._before, self._after = document, before, after
        self._done = True

    def redo(self):
        if self._done:
            self._done = False
            return
        self._document.restore(self._after, always=True)

    def undo(self):
        self._document.restore(self._before, always=True)


class SketchDocument(QObject):
    changed = Signal()  # one real change (see the module's revision rule); nothing carried: read the document

    def __init__(self, width: int = 512, height: int = 512, layers: Sequence[LayerSpec] = LAYERS, parent=None):
        super().__init__(parent)
        names = [spec.name for spec in layers]
        if not layers or not layers[0].opaque or len(set(names)) != len(names):
            raise ValueError(f"layers must be uniquely named with an opaque one at the bottom, got {names}")
        self.undo_stack = QUndoStack(self)
        self._layers = [Layer(spec, spec.fresh(width, height)) for spec in layers]
        self._blank = True  # paper only: nothing drawn, opened or applied yet
        self._revision = 0
        self._stroke: _Stroke | None = None

    # -- reading ------------------------------------------------------------------------------------
    @property
    def revision(self) -> int:
        """Grows by one with every real change (the module's rule); equal revisions mean the same input."""
        return self._revision

    @property
    def is_blank(self) -> bool:
        return self._blank

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layers, bottom to top (a view draws the visible ones in this order)."""
        return tuple(self._layers)

    def layer(self, name: str) -> Layer:
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r}; the document has {[lay.name for lay in self._layers]}")

    def image_size(self) -> QSize:
        return self._layers[0].image.size()

    def contains(self, point: QPointF) -> bool:
        """Whether ``point`` (image pixels) falls on a pixel of the picture."""
        size = self.image_size()
        return 0 <= int(point.x()) < size.width() and 0 <= int(point.y()) < size.height()

    def composite(self, layers: Iterable[str] | None = None) -> QImage:
        """The picture, flattened on paper (RGB32): the visible layers that belong to it, or the named ones."""
        size = self.image_size()
        out = LAYERS[0].fresh(size.width(), size.height())  # paper
        chosen = [lay for lay in self._layers if lay.visible and lay.spec.in_picture] if layers is None \
            else [self.layer(name) for name in layers]
        painter = QPainter(out)
        for layer in chosen:
            painter.drawImage(0, 0, layer.image)
        painter.end()
        return out

    def to_pil(self):
        """The picture as an RGB PIL image at the document's size (what a request carries as its start)."""
        return qimage_to_pil(self.composite())

    def pick(self, point: QPointF) -> QColor | None:
        """The colour of the picture at ``point``, or None outside it."""
        if not self.contains(point):
            return None
        return self.composite().pixelColor(int(point.x()), int(point.y()))

    # -- undo states ------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return Snapshot(tuple(layer.image.copy() for layer in self._layers), self._blank)

    def restore(self, snapshot: Snapshot, always: bool = False) -> None:
        """Put a snapshot back (not an undo step itself: undo and redo use it).  A change when it differs from
        now, or ``always`` (undo and redo count, by the module's rule).  Ends a stroke in progress without an
        undo step: what it drew so far is replaced."""
        self._stroke = None
        if len(snapshot.images) != len(self._layers):
            raise ValueError(f"a snapshot of {len(snapshot.images)} layers for a document of {len(self._layers)}")
        if not always and snapshot == self.snapshot():
            return
        for layer, image in zip(self._layers, snapshot.images):
            layer.image = _owned(image, layer.image.format())  # the snapshot stays as it was
        self._blank = snapshot.blank
        self._bump()

    def set_visible(self, name: str, visible: bool) -> None:
        layer = self.layer(name)
        if layer.visible != visible:
            layer.visible = visible
            self._bump()

    # -- whole-picture edits (each one undo step) ----------------------------------------------------------
    def set_image(self, image, text: str = "New Picture") -> None:
        """``image`` (QImage or PIL) becomes the base, fitted by the engine's rule (cover, centre crop); the other
        layers start clear."""
        pil = qimage_to_pil(image) if isinstance(image, QImage) else image
        size = self.image_size()
        fitted = pil_to_qimage(fit_image(pil, size.width(), size.height()))
        self._edit(text, lambda: self._replace(fitted, keep_overlays=True), blank=False)

    def clear(self) -> None:
        """Every layer back to paper or transparent."""
        size = self.image_size()
        self._edit("Clear", lambda: self._replace(LAYERS[0].fresh(size.width(), size.height())), blank=True)

    def resize(self, width: int, height: int) -> None:
        """A new size: the picture is refitted (cover, centre crop) onto the base, the other layers start clear
        and the undo history starts over.  The same size is no change."""
        if (width, height) == (self.image_size().width(), self.image_size().height()):
            return
        self.end_stroke()
        fitted = pil_to_qimage(fit_image(self.to_pil(), width, height))
        self._replace(fitted)
        self.undo_stack.clear()
        self._bump()

    def _replace(self, base: QImage, keep_overlays: bool = False) -> None:
        """``base`` becomes the bottom layer; the picture's other layers start clear, and so do the overlays
        (lines, mask) unless ``keep_overlays`` and they already have the base's size."""
        self._layers[0].image = _owned(base, OPAQUE_FORMAT)
        for layer in self._layers[1:]:
            if keep_overlays and not layer.spec.in_picture and layer.image.size() == base.size():
                continue
            layer.image = layer.spec.fresh(base.width(), base.height())

    # -- overlay layers (lines, mask) -------------------------------------------------------------------
    def coverage(self, name: str):
        """Where layer ``name`` is drawn, as an L PIL image (white: drawn, black: not), or None when it is empty
        or hidden: a lines layer as a scribble (white lines on black), a mask layer as a mask (white = repaint)."""
        from PIL import Image

        layer = self.layer(name)
        if not layer.visible:
            return None
        alpha = qimage_to_rgba(layer.image)[..., 3]
        if not alpha.any():
            return None
        return Image.fromarray(np.where(alpha > 0, 255, 0).astype(np.uint8), "L")

    def clear_layer(self, name: str) -> None:
        """Layer ``name`` back to transparent (paper for the base): one undo step, none when already clear."""
        layer = self.layer(name)

        def clear():
            layer.image = layer.spec.fresh(layer.image.width(), layer.image.height())

        self._edit(f"Clear {name.title()}", clear, blank=self._blank)

    def set_coverage(self, name: str, mask, color: QColor) -> None:
        """Layer ``name`` becomes ``color`` where the L PIL image ``mask`` (fitted to the document) is light, clear
        elsewhere (what ``coverage`` reads back): one undo step."""
        size = self.image_size()
        drawn = np.asarray(fit_image(mask.convert("L"), size.width(), size.height()).convert("L")) > 127
        pixels = np.zeros((*drawn.shape, 4), np.uint8)
        pixels[drawn] = (color.red(), color.green(), color.blue(), 255)
        layer = self.layer(name)

        def put():
            layer.image = _owned(rgba_to_qimage(pixels), LAYER_FORMAT)

        self._edit(f"Set {name.title()}", put, blank=False)

    def invert_layer(self, name: str, color: QColor) -> None:
        """Drawn pixels of layer ``name`` become clear and clear ones ``color``: one undo step."""
        layer = self.layer(name)
        alpha = qimage_to_rgba(layer.image)[..., 3]
        pixels = np.zeros((*alpha.shape, 4), np.uint8)
        pixels[alpha == 0] = (color.red(), color.green(), color.blue(), 255)

        def invert():
            layer.image = _owned(rgba_to_qimage(pixels), LAYER_FORMAT)

        self._edit(f"Invert {name.title()}", invert, blank=False)

    def extend(self, pixels: int, fill_layer: str = MASK, color: QColor | None = None) -> None:
        """Outpainting: the canvas grows by ``pixels`` on every side (the picture centred, the new border its
        edge colours by the engine's rule), and the border becomes layer ``fill_layer`` (the mask).  The undo
        history starts over, as with ``resize``."""
        size = self.image_size()
        width, height = size.width() + 2 * pixels, size.height() + 2 * pixels
        self.end_stroke()
        grown = LAYERS[0].fresh(width, height)
        painter = QPainter(grown)
        painter.drawImage(pixels, pixels, self.composite())
        painter.end()
        self._replace(grown)
        border = self.layer(fill_layer).image
        painter = QPainter(border)
        painter.fillRect(0, 0, width, height, color or QColor(230, 40, 40))
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
        painter.fillRect(pixels, pixels, size.width(), size.height(), Qt.GlobalColor.transparent)
        painter.end()
        self._blank = False
        self.undo_stack.clear()
        self._bump()

    def _edit(self, text: str, apply: Callable[[], None], blank: bool) -> bool:
        """Run ``apply`` as one undo step; no step, revision or signal when it changed nothing."""
        self.end_stroke()
        before = self.snapshot()
        apply()
        self._blank = blank
        after = self.snapshot()
        if after == before:
            return False
        self.undo_stack.push(_Step(self, text, before, after))
        self._bump()
        return True

    def _bump(self) -> None:
        self._revision += 1
        self.changed.emit()

    # -- strokes and fill --------------------------------------------------------------------------------
    @property
    def stroking(self) -> bool:
        return self._stroke is not None

    def stroke(self, points: Sequence[QPointF], brush: Brush, layer: str = PAINT) -> None:
        """One stroke through image-pixel ``points`` (what a mouse drag does): one undo step."""
        self.begin_stroke(points[0], brush, layer)
        for point in points[1:]:
            self.continue_stroke(point)
        self.end_stroke()

    def begin_stroke(self, point: QPointF, brush: Brush, layer: str = PAINT) -> None:
        """Start a stroke on ``layer`` with a dot at ``point``."""
        self.end_stroke()
        self._stroke = _Stroke(self.layer(layer), brush, "Eraser" if brush.erase else "Brush", self.snapshot(),
                               QPointF(point))
        self._draw_segment(point, point)

    def continue_stroke(self, point: QPointF) -> None:
        if self._stroke is None:
            return
        self._draw_segment(self._stroke.last, point)
        if self._stroke is not None:
            self._stroke.last = QPointF(point)

    def end_stroke(self) -> None:
        """Finish the stroke: one undo step when it drew anything."""
        stroke, self._stroke = self._stroke, None
        if stroke is not None and stroke.drew:
            self.undo_stack.push(_Step(self, stroke.text, stroke.before, self.snapshot()))

    def _draw_segment(self, a: QPointF, b: QPointF) -> None:
        """Draw one segment; a change (revision, signal) only when some pixel under it changed."""
        stroke = self._stroke
        image, brush = stroke.layer.image, stroke.brush
        reach = brush.size / 2 + 2  # the pen's half-width plus antialiasing
        area = QRectF(a, b).normalized().adjusted(-reach, -reach, reach, reach).toAlignedRect() \
            .intersected(image.rect())
        if area.isEmpty():
            return
        before = image.copy(area)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(brush.color, brush.size, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
        if brush.erase and stroke.layer.spec.opaque:
            pen.setColor(PAPER)
        elif brush.erase:
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
            pen.setColor(Qt.GlobalColor.transparent)
        if a == b:  # a click: a dot (Qt draws nothing for a line of zero length, whatever its cap)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(pen.color())
            painter.drawEllipse(a, brush.size / 2, brush.size / 2)
        else:
            painter.setPen(pen)
            painter.drawLine(a, b)
        painter.end()
        if image.copy(area) == before:
            return
        stroke.drew, self._blank = True, False
        self._bump()

    def fill(self, point: QPointF, color: QColor, layer: str = PAINT, tolerance: int = FILL_TOLERANCE) -> None:
        """Fill the region of similar colour around ``point`` (in the picture as seen) with ``color``, on
        ``layer``: one undo step (none outside the picture or when nothing changes)."""
        if not self.contains(point):
            return
        mask = fill_region(qimage_to_rgba(self.composite())[..., :3], int(point.x()), int(point.y()), tolerance)
        pixels = np.zeros((*mask.shape, 4), np.uint8)
        pixels[mask] = (color.red(), color.green(), color.blue(), 255)
        overlay = rgba_to_qimage(pixels)
        target = self.layer(layer)

        def draw():
            painter = QPainter(target.image)
            painter.drawImage(0, 0, overlay)
            painter.end()

        self._edit("Fill", draw, blank=False)
