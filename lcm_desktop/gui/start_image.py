"""Where a starting picture comes from and goes: open, paste, drop, "Use as Input" (the result or a history
item), "Apply" (the result onto the canvas, optionally with a new seed), reopening a history item with its
sketch, and which of Text / Image / Sketch the window shows.  It reads and writes the ``Session`` (mode, size,
seed) and works on the canvas and the result view it is handed; it reaches into no other panel.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QFileDialog, QWidget

from ..core.errors import LcmError
from ..core.init_image import open_image
from ..history import HistoryEntry
from ..session.state import Session, StartMode
from .canvas import LAYER_COLORS, Tool
from .canvas_panel import CanvasPanel
from .image_view import ImageView
from .sketch_document import MASK

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif)"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
PLACEHOLDERS = {StartMode.IMAGE: "Open, paste (Ctrl+V) or drop a picture here",
                StartMode.SKETCH: "Paint a rough sketch; with Live on, the picture follows your brush"}


class StartImage(QObject):
    def __init__(self, canvas_panel: CanvasPanel, session: Session, view: ImageView,
                 status: Callable[[str], None], error: Callable[[str], None], parent: QWidget):
        super().__init__(parent)
        self.canvas_panel, self.canvas, self.session, self.view = canvas_panel, canvas_panel.canvas, session, view
        self._status, self._error, self._parent = status, error, parent
        canvas_panel.openRequested.connect(self.choose_file)
        canvas_panel.applyRequested.connect(self.apply_result)
        session.subscribe(self._session_changed)
        view.colorPicked.connect(self.canvas.set_brush_color)
        canvas_panel.toolChanged.connect(lambda tool: view.set_picking(tool is Tool.PICKER))
        self.sync_size()
        self._mode_changed()

    def _session_changed(self, name: str) -> None:
        if name in ("start_mode", "control_enabled"):
            self._mode_changed()
        elif name == "size":
            self.sync_size()

    # -- what the request starts from ------------------------------------------------------------
    def init_image(self):
        """The canvas's picture (PIL) for an image-to-image request, or None (Text mode, or nothing to start from)."""
        mode = self.session.start_mode
        if mode is StartMode.TEXT or (mode is StartMode.IMAGE and self.canvas.is_blank):
            return None
        return self.canvas.to_pil()

    def _mode_changed(self) -> None:
        mode = self.session.start_mode
        # in Text mode the canvas shows when it steers the picture (its Lines layer: a structure control)
        self.canvas_panel.setVisible(mode is not StartMode.TEXT or self.session.control_enabled)
        self.canvas.placeholder = PLACEHOLDERS.get(mode, "")
        self.canvas.update()

    def sync_size(self) -> None:
        size = self.session.size
        if size:
            self.canvas.resize_canvas(*size)
            self.canvas_panel.set_brush_size(max(2, round(min(size) / 12)))

    def _ensure_canvas_shown(self) -> None:
        if self.session.start_mode is StartMode.TEXT:
            self.session.start_mode = StartMode.IMAGE

    # -- sources ----------------------------------------------------------------------------------
    def use_image(self, image, what: str) -> None:
        """Make ``image`` (QImage or PIL) the starting picture: it goes on the canvas (one undo step)."""
        self._ensure_canvas_shown()
        self.canvas.set_image(image, f"Use {what}")
        self._status(f"Starting from {what}")

    def use_file(self, path: Path) -> bool:
        """Read a picture file (any size or mode; a file that is not a picture is one line) onto the canvas."""
        size = self.canvas.image_size()
        try:
            image = open_image(path, size.width(), size.height())
        except LcmError as exc:
            self._error(exc.user_message)
            return False
        self.use_image(image, path.name)
        return True

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self._parent, "Open a Starting Image", str(Path.home()), IMAGE_FILTER)
        if path:
            self.use_file(Path(path))

    def paste(self) -> bool:
        """Edit ▸ Paste Image: a picture on the clipboard, or a copied picture file."""
        mime = QApplication.clipboard().mimeData()
        if mime is not None and mime.hasImage():
            image = QImage(mime.imageData())
            if not image.isNull():
                self.use_image(image, "the pasted picture")
                return True
        for url in mime.urls() if mime is not None else []:
            path = Path(url.toLocalFile())
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                return self.use_file(path)
        self._status("The clipboard holds no picture.")
        return False

    def use_result(self) -> None:
        """Image ▸ Use as Input: the result in view becomes the starting picture."""
        if self.view.image.isNull() or self.view.is_preview:
            self._status("There is no finished result to start from yet.")
            return
        self.use_image(self.view.image, "the result")

    def use_entry(self, entry: HistoryEntry) -> None:
        if entry.exists:
            self.use_file(entry.path)
        else:
            self._status(f"File missing: {entry.path}")

    def apply_result(self) -> None:
        """"Apply": the result onto the canvas, to keep painting on it; a new seed when the option is on
        (one seed reused on its own result sharpens a little more each time)."""
        if self.view.image.isNull() or self.view.is_preview:
            self._status("There is no finished result to apply yet.")
            return
        self.canvas.set_image(self.view.image, "Apply Result")
        new_seed = self.canvas_panel.new_seed_check.isChecked()
        if new_seed:
            self.session.new_seed()
        self._status("Applied the result to the canvas" + (f" · new seed {self.session.seed}" if new_seed else ""))

    def reopen(self, entry: HistoryEntry) -> None:
        """Reopen a history item with its start: its picture on the canvas, its settings, its strength."""
        if not entry.has_start:
            self._status("That image was not made from a starting picture.")
            return
        self.session.restore(entry)
        self.session.start_mode = StartMode.SKETCH
        self.canvas.set_image(QImage(str(entry.init_image)), "Reopen Sketch")
        self.canvas.document.clear_layer(MASK)
        if entry.mask is not None:  # an inpainted picture: its mask back on the Mask layer
            from PIL import Image

            with Image.open(entry.mask) as mask:
                self.canvas.document.set_coverage(MASK, mask, LAYER_COLORS[MASK])
        if entry.exists:
            self.view.show_image(QImage(str(entry.path)), entry.path)
        self._status(f"Reopened {entry.path.name} with its starting picture")
