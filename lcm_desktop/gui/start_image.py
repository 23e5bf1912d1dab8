"""Where a starting picture comes from and goes: open, paste, drop, "Use as Input" (the result or a history
item), "Apply" (the result onto the canvas, optionally with a new seed), reopening a history item with its
sketch, and which of Text / Image / Sketch the window shows.  Composed into the main window (it is handed
the widgets it works on), so the window module stays about layout and wiring.
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
from .canvas import Tool
from .canvas_panel import CanvasPanel
from .generate_panel import GeneratePanel, StartMode
from .image_view import ImageView

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif)"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
PLACEHOLDERS = {StartMode.IMAGE: "Open, paste (Ctrl+V) or drop a picture here",
                StartMode.SKETCH: "Paint a rough sketch; with Live on, the picture follows your brush"}


class StartImage(QObject):
    def __init__(self, canvas_panel: CanvasPanel, panel: GeneratePanel, view: ImageView,
                 status: Callable[[str], None], error: Callable[[str], None], parent: QWidget,
                 restore_styles: Callable[[HistoryEntry], None] = lambda entry: None):
        super().__init__(parent)
        self.restore_styles = restore_styles
        self.canvas_panel, self.canvas, self.panel, self.view = canvas_panel, canvas_panel.canvas, panel, view
        self._status, self._error, self._parent = status, error, parent
        canvas_panel.openRequested.connect(self.choose_file)
        canvas_panel.applyRequested.connect(self.apply_result)
        panel.start_mode.currentIndexChanged.connect(self._mode_changed)
        panel.size.currentIndexChanged.connect(self.sync_size)
        view.colorPicked.connect(self.canvas.set_brush_color)
        canvas_panel.toolChanged.connect(lambda tool: setattr(view, "picking", tool is Tool.PICKER))
        self.sync_size()
        self._mode_changed()

    # -- what the request starts from ------------------------------------------------------------
    def init_image(self):
        """The canvas's picture (PIL) for an image-to-image request, or None (Text mode, or nothing to start from)."""
        mode = self.panel.mode
        if mode is StartMode.TEXT or (mode is StartMode.IMAGE and self.canvas.is_blank):
            return None
        return self.canvas.to_pil()

    def _mode_changed(self) -> None:
        mode = self.panel.mode
        self.canvas_panel.setVisible(mode is not StartMode.TEXT)
        self.canvas.placeholder = PLACEHOLDERS.get(mode, "")
        self.canvas.update()

    def sync_size(self) -> None:
        size = self.panel.size.currentData()
        if size:
            self.canvas.resize_canvas(*size)
            self.canvas_panel.set_brush_size(max(2, round(min(size) / 12)))

    def _ensure_canvas_shown(self) -> None:
        if self.panel.mode is StartMode.TEXT:
            self.panel.set_mode(StartMode.IMAGE)

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
        if self.canvas_panel.new_seed_check.isChecked():
            self.panel.seed_random.click()
        self._status("Applied the result to the canvas" +
                     (f" · new seed {self.panel.seed.value()}" if self.canvas_panel.new_seed_check.isChecked() else ""))

    def reopen(self, entry: HistoryEntry) -> None:
        """Reopen a history item with its start: its picture on the canvas, its settings, its strength."""
        if not entry.has_start:
            self._status("That image was not made from a starting picture.")
            return
        self.panel.apply(prompt=entry.prompt, negative=entry.negative_prompt, steps=entry.steps,
                         guidance=entry.guidance_scale, seed=entry.seed, size=(entry.width, entry.height),
                         strength=entry.strength)
        self.panel.set_mode(StartMode.SKETCH)
        self.restore_styles(entry)
        self.canvas.set_image(QImage(str(entry.init_image)), "Reopen Sketch")
        if entry.exists:
            self.view.show_image(QImage(str(entry.path)), entry.path)
        self._status(f"Reopened {entry.path.name} with its starting picture")
