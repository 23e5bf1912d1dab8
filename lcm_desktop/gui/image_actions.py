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

from ..core.metadata import read_png_parameters
from ..history import HistoryEntry


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
        self.gallery.takeItem(self.gallery.row(item))

    def _show_entry(self, entry: HistoryEntry) -> None:
        if entry.exists:
            self.view.show_image(QImage(str(entry.path)), entry.path)
        else:
            self.statusBar().showMessage(f"File missing: {entry.path}", 6000)

    # -- drop in -------------------------------------------------------------------------------
    def dragEnterEvent(self, event):
        if any(url.toLocalFile().lower().endswith(".png") for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event):
        for url in event.mimeData().urls():
            path = Path(url.toLocalFile())
            if path.suffix.lower() == ".png" and self.restore_from_png(path):
                event.acceptProposedAction()
                return
        self.statusBar().showMessage("That image carries no generation parameters.", 5000)

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
                         guidance=params.guidance_scale, seed=params.seed, size=size)
        self.statusBar().showMessage(f"Restored the settings of {path.name}", 5000)
        return True
