"""The gallery strip: history thumbnails, newest first; drag a thumbnail out like the result view."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QMenu

from ..history import HistoryEntry
from .image_view import image_mime_data

THUMB = 96
ENTRY_ROLE = Qt.ItemDataRole.UserRole


def _missing_icon() -> QIcon:
    pixmap = QPixmap(THUMB, THUMB)
    pixmap.fill(QColor("#3a3a3a"))
    painter = QPainter(pixmap)
    painter.setPen(QColor("#bbbbbb"))
    painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, "missing")
    painter.end()
    return QIcon(pixmap)


class Gallery(QListWidget):
    entryActivated = Signal(object)  # HistoryEntry
    dragStarted = Signal(object)  # QMimeData
    useAsInputRequested = Signal(object)  # HistoryEntry: start the next image from it
    reopenRequested = Signal(object)  # HistoryEntry: its starting picture back on the canvas, its settings
    restoreRequested = Signal(object)  # HistoryEntry: its settings

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("galleryView")
        self.setAccessibleName("History")
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(False)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setFixedHeight(THUMB + 28)
        self.setMovement(QListWidget.Movement.Static)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragEnabled(True)
        self.setSpacing(4)
        self.itemActivated.connect(lambda item: self.entryActivated.emit(item.data(ENTRY_ROLE)))
        self.itemClicked.connect(lambda item: self.entryActivated.emit(item.data(ENTRY_ROLE)))
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(lambda pos: self._menu_for(self.itemAt(pos), pos))

    def menu(self, item: QListWidgetItem) -> QMenu:
        """The item's actions: use as input, reopen with its starting picture, restore its settings."""
        entry = item.data(ENTRY_ROLE)
        menu = QMenu(self)
        menu.setObjectName("galleryMenu")
        use = menu.addAction("Use as Input", lambda: self.useAsInputRequested.emit(entry))
        use.setEnabled(entry.exists)
        reopen = menu.addAction("Reopen with Its Starting Picture", lambda: self.reopenRequested.emit(entry))
        reopen.setEnabled(entry.has_start)
        menu.addAction("Restore Settings", lambda: self.restoreRequested.emit(entry))
        return menu

    def _menu_for(self, item: QListWidgetItem | None, pos) -> None:
        if item is not None:
            self.menu(item).exec(self.viewport().mapToGlobal(pos))

    def add_entry(self, entry: HistoryEntry, image: QImage | None = None, at_front: bool = True) -> QListWidgetItem:
        item = QListWidgetItem()
        if entry.exists:
            if image is None:
                image = QImage(str(entry.path))
            pixmap = QPixmap.fromImage(image).scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                     Qt.TransformationMode.SmoothTransformation)
            item.setIcon(QIcon(pixmap))
            start = f" · from a picture at strength {entry.strength:g}" if entry.init_image is not None else ""
            origin = " · from the API" if entry.origin == "api" else ""
            item.setToolTip(f"{entry.prompt}\nseed {entry.seed} · {entry.steps} steps · {entry.width}×{entry.height}"
                            f"{start}{origin}")
        else:
            item.setIcon(_missing_icon())
            item.setToolTip(f"File missing: {entry.path}")
        item.setData(ENTRY_ROLE, entry)
        if at_front:
            self.insertItem(0, item)
        else:
            self.addItem(item)
        return item

    def entries(self) -> list[HistoryEntry]:
        return [self.item(i).data(ENTRY_ROLE) for i in range(self.count())]

    def mimeData(self, items):
        entry = items[0].data(ENTRY_ROLE) if items else None
        if entry is None or not entry.exists:
            return super().mimeData(items)
        mime = image_mime_data(entry.path, QImage(str(entry.path)))
        self.dragStarted.emit(mime)
        return mime

    def mimeTypes(self):
        return ["text/uri-list", "application/x-qt-image"]
