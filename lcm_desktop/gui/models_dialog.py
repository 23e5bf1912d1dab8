"""The model manager: catalog with install state and size, download with progress and cancel, delete,
import (file dialog or drag-in), and "Convert for Neural Engine" in a child process."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..core.paths import AppPaths, converter_command
from ..models.download import DownloadProgress, format_size
from .dialogs import show_error
from .tasks import ConvertProcess, Task

COLUMNS = ["Model", "Kind", "Installed", "Size", "Location"]


class ModelsDialog(QDialog):
    modelsChanged = Signal()

    def __init__(self, paths: AppPaths, parent=None):
        super().__init__(parent)
        self.setObjectName("modelsDialog")
        self.setWindowTitle("Models")
        self.setAcceptDrops(True)
        self.resize(900, 460)
        self.paths = paths
        self.rows: list = []  # ModelRow, read at each refresh
        self.catalog = None  # the Catalog read at each refresh
        self.last_error = ""
        self._messages: dict[str, str] = {}  # what the status line says when the running task ends
        self.task: Task | None = None
        self.converter: ConvertProcess | None = None

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("modelsTable")
        self.table.setAccessibleName("Models")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.progress = QProgressBar()
        self.progress.setObjectName("modelsProgress")
        self.progress.setAccessibleName("Download progress")
        self.progress.setVisible(False)
        self.status = QLabel()
        self.status.setObjectName("modelsStatus")
        self.total = QLabel()
        self.total.setObjectName("diskTotal")

        def button(text, name, slot):
            b = QPushButton(text)
            b.setObjectName(name)
            b.setAccessibleName(text.rstrip("…"))
            b.clicked.connect(slot)
            return b

        self.download_button = button("Download", "downloadButton", self.download)
        self.cancel_button = button("Cancel", "cancelTaskButton", self.cancel)
        self.delete_button = button("Delete", "deleteModelButton", self.delete)
        self.import_button = button("Import…", "importButton", self.choose_import)
        self.convert_button = button("Convert for Neural Engine", "convertButton", self.convert)
        close = button("Close", "closeModelsButton", self.close)
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        for b in (self.download_button, self.cancel_button, self.delete_button, self.import_button,
                  self.convert_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        hint = QLabel("Drop a diffusers folder or a .safetensors checkpoint here to import it.")
        hint.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(self.table, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        footer = QHBoxLayout()
        footer.addWidget(hint, 1)
        footer.addWidget(self.total)
        layout.addLayout(footer)
        layout.addLayout(buttons)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.refresh()

    # -- listing --------------------------------------------------------------------------------
    def refresh(self) -> None:
        from ..models.installed import Source
        from ..models.store import ModelStore

        selected = self.selected_name()
        store = ModelStore(paths=self.paths)  # one scan for the table and the total
        self.catalog = store.catalog
        self.rows = store.rows()
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            size = ("≈ " if row.approx else "") + format_size(row.size_bytes)
            values = [row.display, row.kind, row.installed, size, str(row.path or "")]
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, row.name)
                if c == 2 and row.state is not None and not row.usable:
                    item.setForeground(Qt.GlobalColor.darkRed)
                self.table.setItem(r, c, item)
            if row.name == selected:
                self.table.selectRow(r)
        used = sum(m.size_bytes for m in store.disk_usage() if m.source is not Source.BUILTIN)
        self.total.setText(f"Total disk used by models: {format_size(used)}")
        self._update_buttons()

    def selected_name(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def select(self, name: str) -> None:
        for r, row in enumerate(self.rows):
            if row.name == name:
                self.table.selectRow(r)

    def _selected_row(self):
        name = self.selected_name()
        return next((row for row in self.rows if row.name == name), None)

    def _update_buttons(self) -> None:
        row = self._selected_row()
        busy = self.task is not None or self.converter is not None
        entry = self.catalog.find(row.name) if row else None  # the catalog read at refresh, not on every click
        self.download_button.setEnabled(bool(row and entry and entry.downloadable and not row.usable) and not busy)
        self.delete_button.setEnabled(bool(row and row.state is not None and (entry is None or entry.downloadable))
                                      and not busy)
        self.convert_button.setEnabled(bool(row and row.usable and row.kind in ("lcm", "base")
                                            and row.path is not None) and not busy)
        self.cancel_button.setEnabled(busy)

    # -- download --------------------------------------------------------------------------------
    def download(self) -> None:
        from ..models.download import DownloadCancelled, pull

        row = self._selected_row()
        if row is None:
            return
        entry = self.catalog.get(row.name)
        self.task = Task(lambda report, cancel: pull(entry, on_progress=report, cancel=cancel), DownloadCancelled)
        self._messages = {"done": f"Downloaded {entry.name}.",
                          "cancelled": f"Download of {entry.name} cancelled; Download again resumes it."}
        self._connect_task()
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status.setText(f"Downloading {entry.name}…")
        self.task.start()
        self._update_buttons()

    def _connect_task(self) -> None:
        # Bound methods of this dialog (a GUI-thread object): Qt queues the calls to the GUI thread.
        # A lambda here would run on the task's thread and touch widgets from there.
        self.task.progress.connect(self._on_download_progress)
        self.task.finished.connect(self._on_task_finished)
        self.task.failed.connect(self._task_failed)
        self.task.cancelled.connect(self._on_task_cancelled)

    def _on_task_finished(self, result) -> None:
        self._task_done(self._messages["done"])

    def _on_task_cancelled(self) -> None:
        self._task_done(self._messages["cancelled"])

    def _on_download_progress(self, p: DownloadProgress) -> None:
        if p.bytes_total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * p.bytes_done / p.bytes_total))
        self.progress.setFormat(f"{format_size(p.bytes_done)} of {format_size(p.bytes_total)} · "
                                f"file {min(p.files_done + 1, p.files_total)}/{p.files_total}")

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.converter is not None:
            self.converter.cancel()

    def _task_done(self, message: str) -> None:
        if self.task is not None:
            self.task.wait()
        self.task = None
        self.progress.setVisible(False)
        self.status.setText(message)
        self.refresh()
        self.modelsChanged.emit()

    def _task_failed(self, message: str, details: str) -> None:
        self._task_done("")
        self._error(message, details)

    # -- delete, import ------------------------------------------------------------------------------
    def delete(self) -> None:
        from ..core.errors import LcmError
        from ..models.store import delete_model

        row = self._selected_row()
        if row is None:
            return
        answer = QMessageBox.question(self, "Delete model", f"Delete {row.display} and free its disk space?")
        if answer != QMessageBox.StandardButton.Yes:
            return
        try:
            freed = delete_model(row.name, paths=self.paths)
        except LcmError as exc:
            self._error(exc.user_message, "")
            return
        self.status.setText(f"Deleted {row.display}, freed {format_size(freed)}.")
        self.refresh()
        self.modelsChanged.emit()

    def choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a .safetensors checkpoint", str(Path.home()),
                                              "Checkpoints (*.safetensors);;All files (*)")
        if not path:
            path = QFileDialog.getExistingDirectory(self, "…or import a diffusers model folder", str(Path.home()))
        if path:
            self.import_path(Path(path))

    def import_path(self, path: Path) -> None:
        from ..models.importer import import_model

        self.task = Task(lambda report, cancel: import_model(path, paths=self.paths))
        self._messages = {"done": f"Imported {path.name}.", "cancelled": f"Import of {path.name} cancelled."}
        self._connect_task()
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status.setText(f"Importing {path.name}…")
        self.task.start()
        self._update_buttons()

    def dragEnterEvent(self, event):
        urls = event.mimeData().urls()
        if urls and all(u.isLocalFile() for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event):
        for url in event.mimeData().urls():
            self.import_path(Path(url.toLocalFile()))
            event.acceptProposedAction()
            return

    # -- convert ---------------------------------------------------------------------------------------
    def convert(self, program: list[str] | None = None) -> None:
        row = self._selected_row()
        if row is None or row.path is None:
            return
        out = self.paths.data / "coreml" / f"{row.name}-coreml"
        out.parent.mkdir(parents=True, exist_ok=True)
        self.converter = ConvertProcess(row.path, out, ["--force"], program=program or converter_command())
        self.converter.line.connect(self.status.setText)
        self.converter.finished.connect(self._convert_done)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status.setText(f"Converting {row.display} for the Neural Engine…")
        self.converter.start()
        self._update_buttons()

    def _convert_done(self, outcome: str, message: str) -> None:
        from .tasks import ConvertOutcome

        self.converter = None
        self.progress.setVisible(False)
        if outcome == ConvertOutcome.OK:
            self.status.setText("Converted; the Core ML model is listed below.")
        else:
            self.status.setText(message)
            if outcome == ConvertOutcome.FAILED:
                self._error(message or "The conversion failed; run `python -m convert` for details.", "")
        self.refresh()
        self.modelsChanged.emit()

    def _error(self, message: str, details: str) -> None:
        show_error(self, "Models", message, details, "modelsError")
        self.last_error = message

    def closeEvent(self, event):
        self.cancel()
        if self.task is not None:
            self.task.wait()
        if self.converter is not None:
            self.converter.process.waitForFinished(10_000)
        super().closeEvent(event)
