"""What the main window does with images: copy, save as, reveal, delete to the Trash, show a history
entry, and restore settings from a dropped PNG.  A mixin of ``MainWindow`` (it uses its ``view``,
``gallery``, ``history``, ``panel`` and ``statusBar()``), kept apart so the window module stays
about layout and wiring.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PySide6.QtCore import QFile, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QImage
from PySide6.QtWidgets import QApplication, QFileDialog

from ..core.errors import LcmError
from ..core.metadata import read_png_parameters
from ..core.request import LoraWeight
from ..history import HistoryEntry
from .start_image import IMAGE_SUFFIXES


class ImageActions:
    # -- export --------------------------------------------------------------------------------
    def copy_image(self) -> None:
        if self.view.path is not None or not self.view.image.isNull():
            QApplication.clipboard().setMimeData(self.view.mime_data())

    def save_as(self) -> None:
        source = self.view.path
        if source is None:
            return
        target, _ = QFileDialog.getSaveFileName(self, "Save Image As", str(Path.home() / source.name), "PNG (*.png)")
        if target:
            try:
                shutil.copyfile(source, target)
            except OSError as exc:
                self._error(f"Could not save {Path(target).name} ({exc.strerror or exc}); choose another folder.",
                            "")

    def reveal(self) -> None:
        path = self.view.path
        if path is None:
            return
        if sys.platform == "darwin":
            import subprocess

            subprocess.run(["open", "-R", str(path)], check=False)
        else:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))

    def delete_selected(self) -> None:
        item = self.gallery.currentItem()
        if item is None:
            return
        entry = item.data(Qt.ItemDataRole.UserRole)
        if entry.exists and not QFile.moveToTrash(str(entry.path)):
            self._error(f"Could not move {entry.path.name} to the Trash; check the file's permissions.", "")
            return
        self.history.remove(entry.id)
        start = entry.init_image  # the app's own copy of its starting picture, once no other row names it
        if start is not None and start.parent == self.paths.starts and not self.history.uses_start(start):
            start.unlink(missing_ok=True)
        self.gallery.takeItem(self.gallery.row(item))

    def restore_entry(self, entry: HistoryEntry) -> None:
        """A history item's settings back in the panel (its strength too)."""
        self.panel.apply(prompt=entry.prompt, negative=entry.negative_prompt, steps=entry.steps,
                         guidance=entry.guidance_scale, seed=entry.seed, size=(entry.width, entry.height),
                         strength=entry.strength if entry.init_image is not None else None)
        self.restore_entry_styles(entry)
        self.statusBar().showMessage(f"Restored the settings of {entry.path.name}", 5000)

    def restore_entry_styles(self, entry: HistoryEntry) -> None:
        missing = self.styles.set_loras(LoraWeight(name, weight) for name, weight in entry.loras)
        if missing:
            self.statusBar().showMessage(f"Styles not installed: {', '.join(missing)}", 8000)

    def _show_entry(self, entry: HistoryEntry) -> None:
        if entry.exists:
            self.view.show_image(QImage(str(entry.path)), entry.path)
        else:
            self.statusBar().showMessage(f"File missing: {entry.path}", 6000)

    # -- drop in -------------------------------------------------------------------------------
    def dragEnterEvent(self, event):
        mime = event.mimeData()
        if mime.hasImage() or any(Path(url.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES for url in mime.urls()):
            event.acceptProposedAction()

    def dropEvent(self, event):
        """A picture dropped on the canvas starts the next image; elsewhere a PNG with settings restores them,
        and any other picture starts the next image."""
        on_canvas = self.canvas_panel.isVisible() and self.canvas_panel.geometry().contains(
            self.canvas_panel.parentWidget().mapFrom(self, event.position().toPoint()))
        for url in event.mimeData().urls():
            path = Path(url.toLocalFile())
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if not on_canvas and path.suffix.lower() == ".png" and self.restore_from_png(path):
                event.acceptProposedAction()
                return
            if self.start.use_file(path):
                event.acceptProposedAction()
                return
        if event.mimeData().hasImage():
            self.start.use_image(QImage(event.mimeData().imageData()), "the dropped picture")
            event.acceptProposedAction()

    def restore_from_png(self, path: Path) -> bool:
        try:
            params = read_png_parameters(path)
        except OSError:
            params = None
        if params is None:
            return False
        if params.model:
            index = next((i for i in range(self.panel.model.count())
                          if Path(self.panel.model.itemData(i)).name == params.model
                          or self.panel.model.itemText(i) == params.model), -1)
            if index >= 0:
                self.panel.model.setCurrentIndex(index)
        size = (params.width, params.height) if params.width and params.height else None
        self.panel.apply(prompt=params.prompt, negative=params.negative_prompt, steps=params.steps,
                         guidance=params.guidance_scale, seed=params.seed, size=size,
                         strength=params.strength)
        self.styles.set_loras(params.loras)
        missing = self.styles.store.missing(_style_names(params))
        self.statusBar().showMessage(f"Restored the settings of {path.name}" + (
            f"; styles not installed: {', '.join(missing)} (import them in Styles)" if missing else ""),
            12000 if missing else 5000)
        return True


def _strength(text) -> float | None:
    """A recorded ``Denoising strength`` (A1111 writes e.g. ``0.6``), or None when absent or not a number."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if 0 < value <= 1 else None


def _style_names(params) -> list[str]:
    """Every style an image names: its JSON ``loras``, its ``Lora hashes`` and its prompt's ``<lora:…>`` tags."""
    from ..core.prompt_syntax import prompt_loras

    try:
        tags = [tag.name for tag in prompt_loras(params.prompt)]
    except LcmError:  # a malformed tag: generating will say so
        tags = []
    return list(dict.fromkeys([*params.style_names, *params.lora_hashes, *tags]))
