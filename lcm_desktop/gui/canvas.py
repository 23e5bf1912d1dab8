"""The sketch canvas: a paint surface at the request's size whose picture becomes the starting image.

Two layers: ``base`` (paper, an opened picture or an applied result) and ``paint`` (the strokes, over it).
The eraser clears strokes back to the base; "Clear" resets both to paper.  Every edit (a whole stroke, a
fill, a clear, a new picture) is one undo step: a snapshot of both layers, cheap at these sizes (a
512×512 canvas is 2 MB per layer).  Coordinates are image pixels; the widget shows the canvas scaled to
fit, crisp when enlarged (the built-in model draws 64×64).
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from PySide6.QtCore import QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QUndoCommand, QUndoStack
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..core.init_image import BACKGROUND, fit_image
from .images import pil_to_qimage

PAPER = QColor(*BACKGROUND)  # what a cleared canvas and transparent pixels show (the engine's rule too)
FILL_TOLERANCE = 48  # a fill spreads over pixels within this much of the clicked colour (max channel difference)


class Tool(Enum):
    BRUSH = "brush"
    ERASER = "eraser"
    FILL = "fill"
    PICKER = "picker"


def qimage_to_pil(image: QImage):
    """An RGB PIL image (a copy) from any QImage."""
    from PIL import Image

    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    data = bytes(rgb.constBits())[: rgb.bytesPerLine() * rgb.height()]
    return Image.frombuffer("RGB", (rgb.width(), rgb.height()), data, "raw", "RGB", rgb.bytesPerLine(), 1).copy()


def _rgba(image: QImage) -> np.ndarray:
    """(H, W, 4) uint8 RGBA copy of a QImage."""
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    rows = np.frombuffer(rgba.constBits(), np.uint8).reshape(rgba.height(), rgba.bytesPerLine())
    return rows[:, : rgba.width() * 4].reshape(rgba.height(), rgba.width(), 4).copy()


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


class _Snapshot(QUndoCommand):
    """One edit: the layers before and after.  Pushed after the edit was drawn, so the first redo does nothing."""

    def __init__(self, canvas: SketchCanvas, text: str, before: tuple[QImage, QImage, bool]):
        super().__init__(text)
        self._canvas, self._before, self._after = canvas, before, canvas.layers()
        self._done = True

    def redo(self):
        if self._done:
            self._done = False
            return
        self._canvas.set_layers(*self._after)

    def undo(self):
        self._canvas.set_layers(*self._before)


class SketchCanvas(QWidget):
    changed = Signal()  # the picture changed (every stroke segment, fill, clear, undo, new picture)
    colorPicked = Signal(QColor)

    def __init__(self, width: int = 512, height: int = 512, parent=None):
        super().__init__(parent)
        self.setObjectName("canvasView")
        self.setAccessibleName("Sketch canvas")
        self.setMinimumSize(240, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.undo_stack = QUndoStack(self)
        self.tool = Tool.BRUSH
        self.brush_color = QColor("#d8342c")
        self.brush_size = 6
        self.placeholder = ""
        self._base = self._paper(width, height)
        self._paint = self._clear_layer(width, height)
        self._blank = True  # paper only: nothing drawn, opened or applied yet
        self._last: QPointF | None = None
        self._stroke_before: tuple[QImage, QImage, bool] | None = None
        self._hover: QPointF | None = None

    # -- layers -----------------------------------------------------------------------------------
    @staticmethod
    def _paper(width: int, height: int) -> QImage:
        image = QImage(width, height, QImage.Format.Format_RGB32)
        image.fill(PAPER)
        return image

    @staticmethod
    def _clear_layer(width: int, height: int) -> QImage:
        image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        return image

    def layers(self) -> tuple[QImage, QImage, bool]:
        """Copies of (base, strokes, blank): an undo snapshot."""
        return self._base.copy(), self._paint.copy(), self._blank

    def set_layers(self, base: QImage, paint: QImage, blank: bool = False) -> None:
        self._base, self._paint, self._blank = base.copy(), paint.copy(), blank
        self._changed()

    def image_size(self) -> QSize:
        return self._base.size()

    @property
    def is_blank(self) -> bool:
        return self._blank

    def composite(self) -> QImage:
        """The picture: strokes over the base, flattened (RGB32)."""
        out = self._base.copy()
        painter = QPainter(out)
        painter.drawImage(0, 0, self._paint)
        painter.end()
        return out

    def to_pil(self):
        """The picture as an RGB PIL image at the canvas size (what a request carries as its starting image)."""
        return qimage_to_pil(self.composite())

    # -- whole-canvas edits (each one undo step) -----------------------------------------------------
    def set_image(self, image, text: str = "New Picture") -> None:
        """``image`` (QImage or PIL) becomes the base, fitted by the engine's rule (cover, centre crop)."""
        pil = qimage_to_pil(image) if isinstance(image, QImage) else image
        size = self.image_size()
        fitted = pil_to_qimage(fit_image(pil, size.width(), size.height()))
        self._edit(text, lambda: self._replace(fitted.convertToFormat(QImage.Format.Format_RGB32)))

    def clear(self) -> None:
        size = self.image_size()
        self._edit("Clear", lambda: self._replace(self._paper(size.width(), size.height())), blank=True)

    def resize_canvas(self, width: int, height: int) -> None:
        """A new request size: the picture is refitted (cover, centre crop); undo history starts over."""
        if (width, height) == (self._base.width(), self._base.height()):
            return
        blank = self._blank
        self._base = pil_to_qimage(fit_image(self.to_pil(), width, height)).convertToFormat(QImage.Format.Format_RGB32)
        self._paint = self._clear_layer(width, height)
        self._blank = blank
        self.undo_stack.clear()
        self._changed()

    def _replace(self, base: QImage) -> None:
        self._base = base
        self._paint = self._clear_layer(base.width(), base.height())

    def _edit(self, text: str, apply, blank: bool = False) -> None:
        before = self.layers()
        apply()
        self._blank = blank
        self.undo_stack.push(_Snapshot(self, text, before))
        self._changed()

    def _changed(self) -> None:
        self.update()
        self.changed.emit()

    # -- tools ------------------------------------------------------------------------------------
    def stroke(self, points: list[QPointF]) -> None:
        """One brush or eraser stroke through image-pixel ``points`` (what a mouse drag does), one undo step."""
        self.begin_stroke(points[0])
        for point in points[1:]:
            self.continue_stroke(point)
        self.end_stroke()

    def begin_stroke(self, point: QPointF) -> None:
        self._stroke_before = self.layers()
        self._last = point
        self._draw_segment(point, point)

    def continue_stroke(self, point: QPointF) -> None:
        if self._last is None:
            return
        self._draw_segment(self._last, point)
        self._last = point

    def end_stroke(self) -> None:
        if self._stroke_before is not None:
            self.undo_stack.push(_Snapshot(self, "Eraser" if self.tool is Tool.ERASER else "Brush",
                                           self._stroke_before))
        self._stroke_before, self._last = None, None

    def _draw_segment(self, a: QPointF, b: QPointF) -> None:
        painter = QPainter(self._paint)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self.brush_color, self.brush_size, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                   Qt.PenJoinStyle.RoundJoin)
        if self.tool is Tool.ERASER:
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
            pen.setColor(Qt.GlobalColor.transparent)
        painter.setPen(pen)
        painter.drawLine(a, b)
        painter.end()
        self._blank = False
        self._changed()

    def fill(self, point: QPointF) -> None:
        """Fill the region of similar colour around ``point`` (in the picture as seen) with the brush colour."""
        x, y = int(point.x()), int(point.y())
        if not (0 <= x < self._base.width() and 0 <= y < self._base.height()):
            return
        mask = fill_region(_rgba(self.composite())[..., :3], x, y)
        layer = np.zeros((*mask.shape, 4), np.uint8)
        c = self.brush_color
        layer[mask] = (c.red(), c.green(), c.blue(), 255)
        overlay = QImage(layer.tobytes(), mask.shape[1], mask.shape[0], 4 * mask.shape[1],
                         QImage.Format.Format_RGBA8888).copy()

        def draw():
            painter = QPainter(self._paint)
            painter.drawImage(0, 0, overlay)
            painter.end()

        self._edit("Fill", draw)

    def pick(self, point: QPointF) -> QColor | None:
        x, y = int(point.x()), int(point.y())
        if not (0 <= x < self._base.width() and 0 <= y < self._base.height()):
            return None
        color = self.composite().pixelColor(x, y)
        self.set_brush_color(color)
        return color

    def set_brush_color(self, color: QColor) -> None:
        self.brush_color = QColor(color)
        self.colorPicked.emit(self.brush_color)

    # -- view -------------------------------------------------------------------------------------
    def target_rect(self) -> QRect:
        """Where the picture is drawn in the widget (scaled to fit, centred)."""
        size = self._base.size().scaled(self.size() * 0.96, Qt.AspectRatioMode.KeepAspectRatio)
        return QRect((self.width() - size.width()) // 2, (self.height() - size.height()) // 2, size.width(),
                     size.height())

    def to_image(self, pos: QPointF) -> QPointF:
        """A widget position → image pixels."""
        rect = self.target_rect()
        scale = self._base.width() / max(rect.width(), 1)
        return QPointF((pos.x() - rect.x()) * scale, (pos.y() - rect.y()) * scale)

    def paintEvent(self, event):
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window().color().darker(108))
        rect = self.target_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._base.width() * 4 > rect.width())
        painter.drawImage(rect, self.composite())
        if self._blank and self.placeholder:
            painter.setPen(QColor("#777777"))
            painter.drawText(rect.adjusted(16, 16, -16, -16),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
        if self._hover is not None and self.tool in (Tool.BRUSH, Tool.ERASER):
            radius = self.brush_size / 2 * rect.width() / max(self._base.width(), 1)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QPen(QColor(0, 0, 0, 160), 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(self._hover, radius, radius)

    def mousePressEvent(self, event):
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        point = self.to_image(event.position())
        if self.tool is Tool.FILL:
            self.fill(point)
        elif self.tool is Tool.PICKER:
            self.pick(point)
        else:
            self.begin_stroke(point)

    def mouseMoveEvent(self, event):
        self._hover = event.position()
        if self._last is not None and event.buttons() & Qt.MouseButton.LeftButton:
            self.continue_stroke(self.to_image(event.position()))
        else:
            self.update()

    def mouseReleaseEvent(self, event):
        if event.button() == Qt.MouseButton.LeftButton:
            self.end_stroke()

    def leaveEvent(self, event):
        self._hover = None
        self.update()
        super().leaveEvent(event)
