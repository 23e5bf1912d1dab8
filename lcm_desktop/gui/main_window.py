"""The main window: layout, menus and wiring between the panel, the engine thread and the views."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QImage, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QProgressBar, QSplitter, QVBoxLayout, QWidget

from ..core.atomic import clean_stale_parts
from ..core.errors import LcmError
from ..core.model_info import ModelInfo, describe_model
from ..core.paths import AppPaths, builtin_model_path
from ..engine.backends import BackendStatus, choice
from ..history import History
from ..models.styles import StyleStore
from ..outputs import ImageWriter
from .backend_choice import backend_mismatch, fill_backends, prefer_backend
from .canvas_panel import CanvasPanel
from .dialogs import show_error
from .gallery import Gallery
from .generate_panel import GeneratePanel
from .image_actions import ImageActions
from .image_view import ImageView
from .live import LiveMode
from .model_list import usable_models
from .start_image import StartImage
from .styles_panel import StylesPanel
from .workers import EngineThread, Job, JobOutput

log = logging.getLogger(__name__)
LIVE_NOTE = "Live · Generate (Ctrl+Return) keeps this picture"


class MainWindow(ImageActions, QMainWindow):
    def __init__(self, paths: AppPaths, model: Path | None = None, previews: bool = True):
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("LCM Desktop")
        self.paths = paths.ensure()
        self.settings = QSettings(str(self.paths.data / "settings.ini"), QSettings.Format.IniFormat)
        self.history = History(self.paths.data / "history.sqlite3")
        clean_stale_parts(self.output_folder)  # temp files of a save that a crash or kill -9 interrupted
        writer = ImageWriter(self.history, fix="choose another folder (File ▸ Choose Output Folder…)",
                             starts=self.paths.starts)
        self.engine = EngineThread(writer, self.paths.output, previews=previews)
        self._job_id: int | None = None
        self._live_job: int | None = None  # the job Live waits for before starting another
        self._updates: set[int] = set()  # live updates in flight: shown, not saved, errors in the status bar
        self._busy = False
        self.model_info: ModelInfo | None = None  # the selected model, described once when it is selected
        self._model_error = ""  # why the selected model cannot be described
        self._tiny_decoders: dict[str, Path] = {}  # model folder -> its installed tiny decoder (previews)

        self.panel = GeneratePanel()
        self.view = ImageView()
        self.canvas_panel = CanvasPanel()
        self.styles = StylesPanel(StyleStore(self.paths))
        self.panel.add_section(self.styles)
        self.progress = QProgressBar()
        self.progress.setObjectName("progressBar")
        self.progress.setAccessibleName("Progress")
        self.progress.setTextVisible(True)
        self.progress.setFormat("Ready")
        self.progress.setValue(0)
        self.gallery = Gallery()

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 12, 12, 12)
        pictures = QSplitter(Qt.Orientation.Horizontal)  # the canvas (a start) beside the result
        pictures.setObjectName("pictureSplitter")
        pictures.addWidget(self.canvas_panel)
        pictures.addWidget(self.view)
        right_layout.addWidget(pictures, 1)
        right_layout.addWidget(self.progress)
        right_layout.addWidget(self.gallery)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.panel)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([360, 760])
        self.panel.setMinimumWidth(320)
        self.setCentralWidget(splitter)
        self.status_model = QLabel()
        self.status_time = QLabel()
        self.statusBar().addPermanentWidget(self.status_model)
        self.statusBar().addPermanentWidget(self.status_time)
        self.setAcceptDrops(True)
        self.resize(1100, 740)

        self.live = LiveMode(self._live_generate, self)
        self.start = StartImage(self.canvas_panel, self.panel, self.view, self._status, lambda m: self._error(m, ""),
                                self, restore_styles=self.restore_entry_styles)
        self._build_menus()
        self._fill_models(model)
        self._fill_backends([BackendStatus(choice("cpu"), True)])  # until the engine thread has probed
        self._wire()
        self.engine.start()
        self._load_history()
        self._restore_settings(explicit_model=model is not None)

    # -- construction --------------------------------------------------------------------------
    def _build_menus(self) -> None:
        def action(menu, text, slot, shortcut=None, name=None):
            act = QAction(text, self)
            if shortcut:
                act.setShortcut(QKeySequence(shortcut))
            act.triggered.connect(slot)
            if name:
                act.setObjectName(name)
            menu.addAction(act)
            return act

        file_menu = self.menuBar().addMenu("&File")
        self.save_action = action(file_menu, "Save As…", self.save_as, QKeySequence.StandardKey.SaveAs, "saveAsAction")
        self.reveal_action = action(file_menu, "Reveal in Finder" if sys.platform == "darwin" else "Show in Folder",
                                    self.reveal, "Ctrl+Shift+R", "revealAction")
        action(file_menu, "Open Model Folder…", self.choose_model_folder, "Ctrl+O")
        action(file_menu, "Choose Output Folder…", self.choose_output_folder)
        action(file_menu, "Models…", self.open_model_manager, "Ctrl+Shift+M", "modelsAction")
        action(file_menu, "New Style from Images…", self.styles.train_new, None, "newStyleAction")
        file_menu.addSeparator()
        action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)
        action(file_menu, "Open Starting Image…", self.start.choose_file, "Ctrl+Shift+O", "openStartAction")
        edit_menu = self.menuBar().addMenu("&Edit")
        self.copy_action = action(edit_menu, "Copy Image", self.copy_image, QKeySequence.StandardKey.Copy, "copyAction")
        # ⌘V in a text box pastes text there (text widgets take standard keys first); elsewhere it pastes a picture
        action(edit_menu, "Paste Image", self.start.paste, QKeySequence.StandardKey.Paste, "pasteImageAction")
        image_menu = self.menuBar().addMenu("&Image")
        action(image_menu, "Generate", self.generate, "Ctrl+Return")
        action(image_menu, "Use as Input", self.start.use_result, "Ctrl+Shift+I", "useAsInputAction")
        action(image_menu, "Cancel", self.cancel)
        action(image_menu, "Delete from History", self.delete_selected, QKeySequence.StandardKey.Delete)

    def _fill_models(self, model: Path | None = None) -> None:
        """Installed, usable models: the built-in demo first, then pulled, imported and given ones."""
        combo = self.panel.model
        current = str(model) if model is not None else combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        for label, folder in self._usable_models():
            combo.addItem(label, str(folder))
        if model is not None and combo.findData(str(model)) < 0:
            combo.addItem(Path(model).name, str(model))
        index = combo.findData(current) if current else 0
        combo.setCurrentIndex(max(index, 0))
        combo.blockSignals(False)
        self._model_changed()

    def _usable_models(self) -> list[tuple[str, Path]]:
        models = usable_models(self.paths, builtin_model_path())
        self._tiny_decoders = {str(m.folder): m.tiny_decoder for m in models if m.tiny_decoder is not None}
        return [(m.label, m.folder) for m in models]

    def open_model_manager(self):
        from .models_dialog import ModelsDialog

        dialog = ModelsDialog(self.paths, self)
        dialog.modelsChanged.connect(lambda: self._fill_models())
        dialog.show()
        return dialog

    def _fill_backends(self, statuses: list[BackendStatus]) -> None:
        fill_backends(self.panel.backend, statuses, self.settings.value("backend", ""))
        if self.model_info is not None:
            prefer_backend(self.panel.backend, self.model_info.kind)
        self._update_status()

    def _wire(self) -> None:
        w = self.engine.worker
        w.started.connect(self._on_started)
        w.progress.connect(self._on_progress)
        w.preview.connect(self._on_preview)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.loading.connect(self._on_loading)
        w.capabilities.connect(self._fill_backends)
        self.panel.generateRequested.connect(self.generate)
        self.panel.cancelRequested.connect(self.cancel)
        self.panel.changed.connect(self.live.edited)  # any input edited: Live decides
        self.panel.live.toggled.connect(self._on_live_toggled)
        self.panel.model.currentIndexChanged.connect(self._model_changed)
        self.panel.backend.currentIndexChanged.connect(self._update_status)
        self.canvas_panel.canvas.changed.connect(self.live.edited)
        self.styles.changed.connect(self.live.edited)
        self.styles.message.connect(self._status)
        self.gallery.entryActivated.connect(self._show_entry)
        self.gallery.useAsInputRequested.connect(self.start.use_entry)
        self.gallery.reopenRequested.connect(self.start.reopen)
        self.gallery.restoreRequested.connect(self.restore_entry)

    def _load_history(self) -> None:
        for entry in self.history.entries():
            self.gallery.add_entry(entry, at_front=False)

    # -- model ---------------------------------------------------------------------------------
    def current_model(self) -> Path | None:
        data = self.panel.model.currentData()
        return Path(data) if data else None

    def _model_changed(self) -> None:
        model = self.current_model()
        if model is None:
            return
        try:
            self.model_info, self._model_error = describe_model(model), ""
        except LcmError as exc:
            self.model_info, self._model_error = None, exc.user_message
            self.statusBar().showMessage(exc.user_message, 6000)
            return
        self.panel.set_model_defaults(self.model_info)
        self.start.sync_size()  # the canvas follows the size presets (set with their signals blocked)
        self.styles.set_model(self.model_info)
        prefer_backend(self.panel.backend, self.model_info.kind)
        self._update_status()

    def choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a diffusers model folder")
        if folder:
            self.panel.model.addItem(Path(folder).name, folder)
            self.panel.model.setCurrentIndex(self.panel.model.count() - 1)

    def _update_status(self) -> None:
        model = self.current_model()
        self.status_model.setText(f"{self.panel.backend.currentText()}  ·  {model.name if model else 'no model'}")

    # -- generation ----------------------------------------------------------------------------
    def generate(self, live: bool = False) -> bool:
        """Submit the controls' request; ``live``: a live update (shown, not saved; errors in the status bar;
        the model's tiny autoencoder when it has one).  Returns whether a job was submitted."""
        model = self.current_model()
        if model is None:
            self._error("No model is installed; open a model folder (File ▸ Open Model Folder…).", "")
            return False
        try:
            request = self.panel.request(self.start.init_image(), self.styles.loras())
        except LcmError as exc:
            if live:
                self._status(exc.user_message)
            else:
                self._error(exc.user_message, "")
            return False
        info, backend = self.model_info, choice(self.panel.backend.currentData() or "cpu")
        if info is None:
            self._error(self._model_error or f"{model.name} cannot be opened; choose another model.", "")
            return False
        mismatch = backend_mismatch(self.panel.backend, info)
        if mismatch:
            self._error(mismatch, "")
            return False
        tiny = self._tiny_decoders.get(str(model))
        if live and (tiny is not None or info.has_tiny_decoder):
            request = replace(request, tiny_decoder=True)
        job = Job(self.engine.next_id(), request, model, backend.key, save=not live,
                  output_folder=self.output_folder, cache_dir=self.paths.cache / "coreml", tiny_decoder=tiny)
        self._job_id = job.id
        if live or self.live.enabled:  # Live waits for the newest job, a kept one too, before starting another
            self._live_job = job.id
            if live:
                self._updates.add(job.id)
            else:
                self.live.taken()
        self._set_busy(True)
        self.progress.setFormat("Starting…")
        self.engine.worker.submit(job)
        return True

    def cancel(self) -> None:
        self.engine.worker.cancel()

    def _on_live_toggled(self, on: bool) -> None:
        if on:
            self.panel.seed_lock.setChecked(True)  # the picture changes only where the input does
        self.live.set_enabled(on)

    def _live_generate(self) -> bool:
        return self.panel.live.isChecked() and bool(self.panel.prompt.toPlainText().strip()) and \
            self.generate(live=True)

    def _live_ended(self, job_id: int, seconds: float | None) -> None:
        self._updates.discard(job_id)
        if job_id == self._live_job:
            self._live_job = None
            self.live.ended(seconds)

    def _status(self, message: str, ms: int = 5000) -> None:
        self.statusBar().showMessage(message, ms)

    def _on_loading(self, name: str) -> None:
        self.progress.setRange(0, 0)  # busy indicator while the model loads
        self.progress.setFormat(f"Loading {name}…")

    def _on_started(self, job_id: int, total: int) -> None:
        if job_id == self._job_id:
            self.progress.setRange(0, total)
            self.progress.setValue(0)
            self.progress.setFormat(f"Step 0/{total}")

    def _on_progress(self, job_id: int, step: int, total: int, rate: float) -> None:
        if job_id == self._job_id:
            self.progress.setRange(0, total)
            self.progress.setValue(step)
            self.progress.setFormat(f"Step {step}/{total} · {rate:.1f} it/s")

    def _on_preview(self, job_id: int, image: QImage) -> None:
        if job_id == self._job_id:
            self.view.show_image(image, preview=True)

    def _on_finished(self, job_id: int, output: JobOutput) -> None:
        try:
            self._show_output(job_id, output)
        finally:
            self._live_ended(job_id, max(output.result.timings.total - output.result.timings.load, 0.0))

    def _show_output(self, job_id: int, output: JobOutput) -> None:
        result = output.result
        for saved, image in zip(output.saved, output.images):
            if saved.entry is not None:
                self.gallery.add_entry(saved.entry, image)
        if job_id != self._job_id:
            return  # a job the user moved on from (kept in history when it was saved, not shown)
        self.view.show_image(output.images[0], output.paths[0] if output.paths else None)
        total = result.timings.total
        per_image = total / max(len(output.images), 1)
        self.status_time.setText(f"{per_image:.2f} s/image · seed {result.seeds[0]}")
        self.panel.seed.blockSignals(True)
        self.panel.seed.setValue(min(result.seeds[0], self.panel.seed.maximum()))
        self.panel.seed.blockSignals(False)
        note = " · negative prompt ignored by this model" if result.negative_prompt_ignored else ""
        if result.truncation_note:
            note += f" · {result.truncation_note}"
        saved = f"Saved {output.paths[0].name}" if output.paths else LIVE_NOTE if job_id in self._updates else "Done"
        self._status(saved + note, 15000 if result.truncation_note else 6000)
        self.progress.setFormat(f"Done · {per_image:.2f} s/image")
        self._set_busy(False)

    def _on_failed(self, job_id: int, message: str, details: str) -> None:
        if job_id == self._job_id:
            self._set_busy(False)
            self.progress.setFormat("Failed")
            if job_id in self._updates:
                self._status(message, 8000)  # live: no dialog per keystroke or stroke
            else:
                self._error(message, details)
        self._live_ended(job_id, None)

    def _on_cancelled(self, job_id: int) -> None:
        if job_id == self._job_id:
            self._set_busy(False)
            self.progress.setValue(0)
            self.progress.setFormat("Cancelled")
        self._live_ended(job_id, None)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.panel.set_busy(busy)

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def output_folder(self) -> Path:
        """Where images go: the user's choice (settings) or the app's output folder."""
        chosen = self.settings.value("output_folder", "")
        return Path(chosen) if chosen else self.paths.output

    def choose_output_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose where images are saved", str(self.output_folder))
        if folder:
            self.settings.setValue("output_folder", folder)
            self.statusBar().showMessage(f"Images will be saved in {folder}", 5000)

    # -- errors, settings, close ---------------------------------------------------------------------
    def _error(self, message: str, details: str) -> None:
        show_error(self, "LCM Desktop", message, details, "errorDialog")
        self.last_error = message

    def _restore_settings(self, explicit_model: bool) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        self.panel.restore_settings(self.settings, explicit_model)

    def closeEvent(self, event):
        self.live.set_enabled(False)
        self.settings.setValue("geometry", self.saveGeometry())
        self.panel.save_settings(self.settings)
        self.engine.stop()
        self.history.close()
        super().closeEvent(event)

