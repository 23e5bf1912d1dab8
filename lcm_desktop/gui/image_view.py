"""The large result view: shows previews and results; drags the image out as a PNG file + image."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDrag, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QSizePolicy, QWidget


def image_mime_data(path: Path | None, image: QImage | None) -> QMimeData:
    """A file URL to the PNG (with its parameters chunk) and the image itself: Finder, Mail and editors accept it."""
    mime = QMimeData()
    if path is not None:
        mime.setUrls([QUrl.fromLocalFile(str(path))])
    if image is not None and not image.isNull():
        mime.setImageData(image)
    return mime


class ImageView(QWidget):
    """Paints the current image scaled to fit, with a placeholder when empty."""

    dragStarted = Signal(object)  # the QMimeData of the drag (for tests and logging)
    colorPicked = Signal(QColor)  # a click while ``picking`` (the canvas's colour picker takes result colours)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("resultView")
        self.setAccessibleName("Result image")
        self.setMinimumSize(320, 320)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._image = QImage()
        self._pixmap: QPixmap | None = None
        self._path: Path | None = None
        self._is_preview = False
        self._press: QPoint | None = None
        self.picking = False
        self.placeholder = "Type a prompt and press Generate (Ctrl+Return)."

    # -- content --------------------------------------------------------------------------------
    def set_picking(self, on: bool) -> None:
        """Clicks here pick colours for the canvas while its colour picker is the tool."""
        self.picking = on

    def show_image(self, image: QImage, path: Path | None = None, preview: bool = False) -> None:
        self._image = image
        self._pixmap = QPixmap.fromImage(image)  # GUI thread only
        self._path = path
        self._is_preview = preview
        self.update()

    def clear(self) -> None:
        self._image, self._pixmap, self._path = QImage(), None, None
        self.update()

    @property
    def image(self) -> QImage:
        return self._image

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def is_preview(self) -> bool:
        return self._is_preview

    def mime_data(self) -> QMimeData:
        return image_mime_data(self._path, self._image)

    # -- painting -------------------------------------------------------------------------------
    def _target(self):
        target = self._image.size().scaled(self.size() * 0.96, Qt.AspectRatioMode.KeepAspectRatio)
        return (self.width() - target.width()) // 2, (self.height() - target.height()) // 2, target

    def color_at(self, pos) -> QColor | None:
        """The image's colour under a widget position, or None outside the image."""
        if self._image.isNull():
            return None
        x, y, target = self._target()
        px = int((pos.x() - x) * self._image.width() / max(target.width(), 1))
        py = int((pos.y() - y) * self._image.height() / max(target.height(), 1))
        if 0 <= px < self._image.width() and 0 <= py < self._image.height():
            return self._image.pixelColor(px, py)
        return None

    def paintEvent(self, event):
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window().color().darker(108))
        if self._pixmap is None:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        x, y, target = self._target()
        small = self._pixmap.width() * 4 <= target.width()  # tiny models: keep pixels crisp
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not small)
        painter.drawPixmap(x, y, target.width(), target.height(), self._pixmap)
        if self._is_preview:
            badge = painter.fontMetrics().boundingRect("preview").adjusted(-8, -4, 8, 4)
            badge.moveTopLeft(QPoint(x + 8, y + 8))
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 150))
            painter.drawRoundedRect(badge, 6, 6)
            painter.setPen(Qt.GlobalColor.white)
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, "preview")

    # -- drag out -------------------------------------------------------------------------------
    def mousePressEvent(self, event):
        if event.button() == Qt.MouseButton.LeftButton and self.picking:
            color = self.color_at(event.position())
            if color is not None:
                self.colorPicked.emit(color)
            return
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event):
        if (self._press is not None and self._path is not None and not self._is_preview
                and (event.position().toPoint() - self._press).manhattanLength() >= QApplication.startDragDistance()):
            self._press = None
            self.start_drag()
        super().mouseMoveEvent(event)

    def start_drag(self) -> None:
        drag = QDrag(self)
        mime = self.mime_data()
        drag.setMimeData(mime)
        if self._pixmap is not None:
            drag.setPixmap(self._pixmap.scaled(128, 128, Qt.AspectRatioMode.KeepAspectRatio))
        self.dragStarted.emit(mime)
        drag.exec(Qt.DropAction.CopyAction)
