"""What the window does with images: copy, save as, reveal, delete to the Trash, show a history entry, restore
settings from a history item or a dropped PNG (through the session's one mapping), and what a drop means.
Composed into the window: it is handed exactly what it works on."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QFile, QObject, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QImage
from PySide6.QtWidgets import QApplication, QFileDialog, QWidget

from ..core.errors import LcmError
from ..core.metadata import ImageParameters, read_png_parameters
from ..core.paths import AppPaths
from ..history import History, HistoryEntry, mask_path
from ..models.styles import StyleStore
from ..session.state import Session
from .gallery import Gallery
from .image_view import ImageView
from .start_image import IMAGE_SUFFIXES, StartImage


class ImageActions(QObject):
    def __init__(self, parent: QWidget, view: ImageView, gallery: Gallery, history: History, paths: AppPaths,
                 session: Session, store: StyleStore, find_model: Callable[[str], str | None],
                 status: Callable[[str, int], None], error: Callable[[str, str], None]):
        super().__init__(parent)
        self._parent, self.view, self.gallery, self.history, self.paths = parent, view, gallery, history, paths
        self.session, self.store, self._find_model = session, store, find_model
        self._status, self._error = status, error

    # -- export --------------------------------------------------------------------------------
    def copy_image(self) -> None:
        if self.view.path is not None or not self.view.image.isNull():
            QApplication.clipboard().setMimeData(self.view.mime_data())

    def save_as(self) -> None:
        source = self.view.path
        if source is None:
            return
        target, _ = QFileDialog.getSaveFileName(self._parent, "Save Image As", str(Path.home() / source.name),
                                                "PNG (*.png)")
        if target:
            try:
                shutil.copyfile(source, target)
            except OSError as exc:
                self._error(f"Could not save {Path(target).name} ({exc.strerror or exc}); choose another folder.",
                            "")

    def choose_output_folder(self) -> None:
        current = self.session.output_folder or str(self.paths.output)
        folder = QFileDialog.getExistingDirectory(self._parent, "Choose where images are saved", current)
        if folder:
            self.session.output_folder = folder
            self._status(f"Images will be saved in {folder}", 5000)

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
            mask_path(start).unlink(missing_ok=True)
        self.gallery.takeItem(self.gallery.row(item))

    def show_entry(self, entry: HistoryEntry) -> None:
        if entry.exists:
            self.view.show_image(QImage(str(entry.path)), entry.path)
        else:
            self._status(f"File missing: {entry.path}", 6000)

    # -- restore (the session's one mapping) -------------------------------------------------------------
    def restore(self, record: ImageParameters | HistoryEntry, name: str) -> None:
        self.session.restore(record, self._find_model)
        missing = self.store.missing(_style_names(record))
        self._status(f"Restored the settings of {name}" + (
            f"; styles not installed: {', '.join(missing)} (import them in Styles)" if missing else ""),
            12000 if missing else 5000)

    def restore_entry(self, entry: HistoryEntry) -> None:
        self.restore(entry, entry.path.name)

    def restore_from_png(self, path: Path) -> bool:
        try:
            params = read_png_parameters(path)
        except OSError:
            params = None
        if params is None:
            return False
        self.restore(params, path.name)
        return True

    # -- drop in -------------------------------------------------------------------------------
    @staticmethod
    def accepts(mime) -> bool:
        return mime.hasImage() or any(Path(url.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES for url in mime.urls())

    def drop(self, mime, on_canvas: bool, start: StartImage) -> bool:
        """A picture dropped on the canvas starts the next image; elsewhere a PNG with settings restores them,
        and any other picture starts the next image.  Returns whether the drop was used."""
        for url in mime.urls():
            path = Path(url.toLocalFile())
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if not on_canvas and path.suffix.lower() == ".png" and self.restore_from_png(path):
                return True
            if start.use_file(path):
                return True
        if mime.hasImage():
            start.use_image(QImage(mime.imageData()), "the dropped picture")
            return True
        return False


def _style_names(record: ImageParameters | HistoryEntry) -> list[str]:
    """Every style a record names: its styles, its ``Lora hashes`` and its prompt's ``<lora:…>`` tags."""
    from ..core.prompt_syntax import prompt_loras

    try:
        tags = [tag.name for tag in prompt_loras(record.prompt)]
    except LcmError:  # a malformed tag: generating will say so
        tags = []
    if isinstance(record, HistoryEntry):
        return list(dict.fromkeys([*(name for name, _ in record.loras), *tags]))
    return list(dict.fromkeys([*record.style_names, *record.lora_hashes, *tags]))
