"""The sketch canvas: the view of a ``SketchDocument`` (the picture that becomes the starting image).

It paints and handles the mouse, nothing more: ``paintEvent`` draws the document's visible layers one over the
other, scaled to fit (crisp when enlarged: the built-in model draws 64×64), and mouse presses and drags become
document strokes, fills and picks with the current tool and brush.  The document (layers, blank flag, revision,
undo, fill) lives in ``gui.sketch_document``; the names other modules used before it existed (``set_image``,
``to_pil``, ``undo_stack``, ``changed``, …) forward to it.  Coordinates given to the tools are image pixels.
"""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QUndoStack
from PySide6.QtWidgets import QSizePolicy, QWidget

from .sketch_document import BASE, MASK, PAINT, Brush, SketchDocument, Snapshot

# overlay layers draw in their own colour, whatever the brush colour (what they mean is where, not what colour)
LAYER_COLORS = {"lines": QColor("#16308c"), MASK: QColor(230, 40, 40)}
MASK_OPACITY = 0.45  # the mask is shown as a translucent red tint over the picture


class Tool(Enum):
    BRUSH = "brush"
    ERASER = "eraser"
    FILL = "fill"
    PICKER = "picker"


class SketchCanvas(QWidget):
    changed = Signal()  # the document changed (its ``changed``: once per real change)
    colorPicked = Signal(QColor)

    def __init__(self, width: int = 512, height: int = 512, parent=None, document: SketchDocument | None = None):
        super().__init__(parent)
        self.setObjectName("canvasView")
        self.setAccessibleName("Sketch canvas")
        self.setMinimumSize(240, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.document = document if document is not None else SketchDocument(width, height, parent=self)
        self.document.changed.connect(self._document_changed)
        self.tool = Tool.BRUSH
        self.brush_color = QColor("#d8342c")
        self.brush_size = 6
        self.layer = PAINT  # where strokes and fills go
        self.placeholder = ""
        self._hover: QPointF | None = None

    def _document_changed(self) -> None:
        self.update()
        self.changed.emit()

    # -- the document, as other modules reach it ----------------------------------------------------------
    @property
    def undo_stack(self) -> QUndoStack:
        return self.document.undo_stack

    @property
    def is_blank(self) -> bool:
        return self.document.is_blank

    def image_size(self) -> QSize:
        return self.document.image_size()

    def composite(self) -> QImage:
        return self.document.composite()

    def to_pil(self):
        return self.document.to_pil()

    def set_image(self, image, text: str = "New Picture") -> None:
        self.document.set_image(image, text)

    def clear(self) -> None:
        self.document.clear()

    def resize_canvas(self, width: int, height: int) -> None:
        self.document.resize(width, height)

    def layers(self) -> tuple[QImage, QImage, bool]:
        """Copies of (base, strokes, blank)."""
        snapshot = self.document.snapshot()
        names = [layer.name for layer in self.document.layers]
        return snapshot.images[names.index(BASE)], snapshot.images[names.index(PAINT)], snapshot.blank

    def set_layers(self, base: QImage, paint: QImage, blank: bool = False) -> None:
        """Put (base, strokes, blank) back; not an undo step."""
        images = [base if layer.name == BASE else paint if layer.name == PAINT else layer.image
                  for layer in self.document.layers]
        self.document.restore(Snapshot(tuple(images), blank))

    # -- tools ------------------------------------------------------------------------------------
    def brush(self) -> Brush:
        color = LAYER_COLORS.get(self.layer, self.brush_color)
        return Brush(QColor(color), self.brush_size, erase=self.tool is Tool.ERASER)

    def stroke(self, points: list[QPointF]) -> None:
        """One brush or eraser stroke through image-pixel ``points`` (what a mouse drag does), one undo step."""
        self.document.stroke(points, self.brush(), self.layer)

    def begin_stroke(self, point: QPointF) -> None:
        self.document.begin_stroke(point, self.brush(), self.layer)

    def continue_stroke(self, point: QPointF) -> None:
        self.document.continue_stroke(point)

    def end_stroke(self) -> None:
        self.document.end_stroke()

    def fill(self, point: QPointF) -> None:
        """Fill the region of similar colour around ``point`` (in the picture as seen) with the brush colour."""
        self.document.fill(point, LAYER_COLORS.get(self.layer, self.brush_color), self.layer)

    def pick(self, point: QPointF) -> QColor | None:
        """The picture's colour at ``point`` becomes the brush colour."""
        color = self.document.pick(point)
        if color is not None:
            self.set_brush_color(color)
        return color

    def set_brush_color(self, color: QColor) -> None:
        self.brush_color = QColor(color)
        self.colorPicked.emit(self.brush_color)

    # -- view -------------------------------------------------------------------------------------
    def target_rect(self) -> QRect:
        """Where the picture is drawn in the widget (scaled to fit, centred)."""
        size = self.image_size().scaled(self.size() * 0.96, Qt.AspectRatioMode.KeepAspectRatio)
        return QRect((self.width() - size.width()) // 2, (self.height() - size.height()) // 2, size.width(),
                     size.height())

    def to_image(self, pos: QPointF) -> QPointF:
        """A widget position → image pixels."""
        rect = self.target_rect()
        scale = self.image_size().width() / max(rect.width(), 1)
        return QPointF((pos.x() - rect.x()) * scale, (pos.y() - rect.y()) * scale)

    def paintEvent(self, event):
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window().color().darker(108))
        rect, width = self.target_rect(), self.image_size().width()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, width * 4 > rect.width())
        for layer in self.document.layers:  # bottom to top, each scaled: no flattened copy per repaint
            if layer.visible:
                painter.setOpacity(MASK_OPACITY if layer.name == MASK else 1.0)
                painter.drawImage(rect, layer.image)
        painter.setOpacity(1.0)
        if self.document.is_blank and self.placeholder:
            painter.setPen(QColor("#777777"))
            painter.drawText(rect.adjusted(16, 16, -16, -16),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
        if self._hover is not None and self.tool in (Tool.BRUSH, Tool.ERASER):
            radius = self.brush_size / 2 * rect.width() / max(width, 1)
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
        if self.document.stroking and event.buttons() & Qt.MouseButton.LeftButton:
            self.continue_stroke(self.to_image(event.position()))
        self.update()  # the brush outline follows the mouse

    def mouseReleaseEvent(self, event):
        if event.button() == Qt.MouseButton.LeftButton:
            self.end_stroke()

    def leaveEvent(self, event):
        self._hover = None
        self.update()
        super().leaveEvent(event)
