"""The main window: layout, menus, and rendering of results.  Its state is the ``Session`` (inputs), the
engine bridge's ``JobQueue`` (jobs) and the sketch document (the canvas); widgets bind to them."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QSplitter, QVBoxLayout, QWidget

from ..core.atomic import clean_stale_parts
from ..core.errors import LcmError
from ..core.model_info import ModelInfo, describe_model
from ..core.paths import AppPaths, builtin_model_path
from ..engine.backends import BackendStatus, choice
from ..history import History
from ..models.styles import StyleStore
from ..outputs import ImageWriter
from ..session.jobs import EngineSpec, JobKind
from ..session.state import NOT_PICTURE, SETTINGS_FILE, Session, load_settings, save_settings
from .api_toggle import ApiToggle
from .backend_choice import backend_mismatch, fill_backends, prefer_backend
from .canvas_panel import CanvasPanel
from .dialogs import show_error
from .engine_bridge import EngineBridge
from .gallery import Gallery
from .generate_panel import GeneratePanel
from .image_actions import ImageActions
from .image_view import ImageView
from .job_view import JobView, progress_bar
from .layer_panel import LayerInputs
from .live import LiveMode
from .menus import build_menus
from .model_list import usable_models
from .start_image import StartImage
from .styles_panel import StylesPanel

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(self, paths: AppPaths, model: Path | None = None, previews: bool = True):
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("LCM Desktop")
        self.paths = paths.ensure()
        self.settings = QSettings(str(self.paths.data / "settings.ini"), QSettings.Format.IniFormat)  # geometry
        self.session = Session()
        self.history = History(self.paths.data / "history.sqlite3")
        self.style_store = StyleStore(self.paths)  # one per app: the panel and the engine thread share it
        writer = ImageWriter(self.history, fix="choose another folder (File ▸ Choose Output Folder…)",
                             starts=self.paths.starts)
        self.engine = EngineBridge(writer, self.paths.output, self.style_store.path_of, previews=previews)
        self.model_info: ModelInfo | None = None  # the selected model, described once when it is selected
        self._model_error = ""  # why the selected model cannot be described
        self._tiny_decoders: dict[str, Path] = {}  # model folder -> its installed tiny decoder (previews)

        self.panel = GeneratePanel(self.session)
        self.view = ImageView()
        self.canvas_panel = CanvasPanel()
        self.styles = StylesPanel(self.style_store)
        self.gallery = Gallery()
        self._layout()
        self.jobs = JobView(self.progress, self.view, self.gallery, self.status_time, self.panel.set_busy,
                            self._status, self._error, self)
        self.live = LiveMode(self._live_generate, self._live_key, lambda: self.engine.queue.idle, self)
        self.start = StartImage(self.canvas_panel, self.session, self.view, self._status,
                                lambda message: self._error(message, ""), self)
        self.actions = ImageActions(self, self.view, self.gallery, self.history, self.paths, self.session,
                                    self.style_store, self._find_model, self._status, self._error)
        build_menus(self)
        self.api = ApiToggle(self.serve_action, self.engine.queue, self.session, self._engine_spec,
                             self.style_store, self._status, self._error, self)
        self._wire()
        self.layers = LayerInputs(self)  # the Lines and Mask layers, the Control panel
        self._fill_models(model)
        self._fill_backends([BackendStatus(choice("cpu"), True)])  # until the engine thread has probed
        self.engine.start()
        for entry in self.history.entries():
            self.gallery.add_entry(entry, at_front=False)
        self._restore_settings(explicit_model=model is not None)
        clean_stale_parts(self.output_folder)  # temp files of a save that a crash or kill -9 interrupted

    def _layout(self) -> None:
        self.panel.add_section(self.styles)
        self.progress = progress_bar()
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
        self.status_model, self.status_time = QLabel(), QLabel()
        self.statusBar().addPermanentWidget(self.status_model)
        self.statusBar().addPermanentWidget(self.status_time)
        self.setAcceptDrops(True)
        self.resize(1100, 740)

    def _wire(self) -> None:
        self.jobs.connect(self.engine)
        self.engine.queued.connect(self.live.job_queued)
        self.engine.ended.connect(self.live.job_ended)
        self.engine.capabilities.connect(self._fill_backends)
        self.panel.generateRequested.connect(self.generate)
        self.panel.cancelRequested.connect(self.cancel)
        self.session.subscribe(self._session_changed)
        self.canvas_panel.canvas.changed.connect(self.live.edited)
        self.styles.changed.connect(lambda: setattr(self.session, "styles", self.styles.loras()))
        self.styles.message.connect(self._status)
        self.gallery.entryActivated.connect(self.actions.show_entry)
        self.gallery.useAsInputRequested.connect(self.start.use_entry)
        self.gallery.reopenRequested.connect(self.start.reopen)
        self.gallery.restoreRequested.connect(self.actions.restore_entry)

    def _session_changed(self, name: str) -> None:
        if name == "model":
            self._model_changed()
        elif name == "styles":
            self.styles.set_loras(self.session.styles)
        elif name == "live":
            self.live.set_enabled(self.session.live)
        if name in ("model", "backend"):
            self._update_status()
        if name not in NOT_PICTURE:
            self.live.edited()

    # -- model ---------------------------------------------------------------------------------
    def current_model(self) -> Path | None:
        return Path(self.session.model) if self.session.model else None

    def _fill_models(self, model: Path | None = None) -> None:
        """Installed, usable models: the built-in demo first, then pulled, imported and given ones."""
        combo, current = self.panel.model, str(model) if model is not None else self.session.model
        models = usable_models(self.paths, builtin_model_path())
        self._tiny_decoders = {str(m.folder): m.tiny_decoder for m in models if m.tiny_decoder is not None}
        combo.blockSignals(True)
        combo.clear()
        for m in models:
            combo.addItem(m.label, str(m.folder))
        if model is not None and combo.findData(str(model)) < 0:
            combo.addItem(Path(model).name, str(model))
        combo.setCurrentIndex(max(combo.findData(current) if current else 0, 0))
        combo.blockSignals(False)
        if self.session.model == (combo.currentData() or ""):
            self._model_changed()  # the same folder: describe it again (it may have been replaced)
        self.session.model = combo.currentData() or ""

    def _find_model(self, name: str) -> str | None:
        """The installed model a PNG's ``Model:`` names (its folder's name or its label)."""
        combo = self.panel.model
        return next((combo.itemData(i) for i in range(combo.count())
                     if Path(combo.itemData(i)).name == name or combo.itemText(i) == name), None)

    def open_model_manager(self):
        from .models_dialog import ModelsDialog

        dialog = ModelsDialog(self.paths, self)
        dialog.modelsChanged.connect(lambda: self._fill_models())
        dialog.show()
        return dialog

    def _fill_backends(self, statuses: list[BackendStatus]) -> None:
        fill_backends(self.panel.backend, statuses, self.session.backend)
        if self.model_info is not None:
            prefer_backend(self.panel.backend, self.model_info.kind)
        self.session.backend = self.panel.backend.currentData() or ""
        self._update_status()

    def _model_changed(self) -> None:
        model = self.current_model()
        if model is None:
            return
        try:
            self.model_info, self._model_error = describe_model(model), ""
        except LcmError as exc:
            self.model_info, self._model_error = None, exc.user_message
            self._status(exc.user_message, 6000)
            return
        self.panel.set_model_defaults(self.model_info)
        self.styles.set_model(self.model_info)
        prefer_backend(self.panel.backend, self.model_info.kind)
        self.session.backend = self.panel.backend.currentData() or ""
        self.api.model_changed()

    def choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a diffusers model folder")
        if folder:
            self.panel.model.addItem(Path(folder).name, folder)
            self.session.model = folder

    def _update_status(self) -> None:
        model = self.current_model()
        self.status_model.setText(f"{self.panel.backend.currentText()}  ·  {model.name if model else 'no model'}")

    # -- generation ----------------------------------------------------------------------------
    def generate(self, live: bool = False) -> bool:
        """Submit the session's request; ``live``: a live update (shown, not saved; errors in the status bar;
        the model's tiny autoencoder when it has one).  Returns whether a job was submitted."""
        model, info = self.current_model(), self.model_info
        if model is None or info is None:
            self._error(self._model_error or "No model is installed; open a model folder (File ▸ Open Model "
                        "Folder…).", "")
            return False
        try:
            request = self.session.to_request(self.start.init_image(), info, live=live, **self.layers.images())
        except LcmError as exc:
            (self._status if live else lambda m: self._error(m, ""))(exc.user_message)
            return False
        mismatch = backend_mismatch(self.panel.backend, info)
        if mismatch:
            self._error(mismatch, "")
            return False
        spec = self._engine_spec()
        if live and (spec.tiny_decoder is not None or info.has_tiny_decoder):
            request = replace(request, tiny_decoder=True)
        job = self.engine.submit(JobKind.LIVE if live else JobKind.KEPT, request, spec, self.output_folder)
        self.jobs.show(job)
        return True

    def _engine_spec(self) -> EngineSpec | None:
        model = self.current_model()
        return None if model is None else EngineSpec(model, choice(self.session.backend or "cpu").key,
                                                      self._tiny_decoders.get(str(model)), self.paths.cache / "coreml")

    def cancel(self) -> None:
        self.engine.cancel()

    def _live_key(self):
        """The live input: every session input and, when starting from the canvas, the sketch's revision."""
        return self.session.key(), self.canvas_panel.canvas.document.revision if self.layers.live_revision() else None

    def _live_generate(self) -> bool:
        return self.session.live and bool(self.session.prompt.strip()) and self.generate(live=True)

    def _status(self, message: str, ms: int = 5000) -> None:
        self.statusBar().showMessage(message, ms)

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    # -- output folder, errors, settings, close -----------------------------------------------------------
    @property
    def output_folder(self) -> Path:
        """Where images go: the user's choice or the app's output folder."""
        return Path(self.session.output_folder) if self.session.output_folder else self.paths.output

    def _error(self, message: str, details: str) -> None:
        show_error(self, "LCM Desktop", message, details, "errorDialog")
        self.last_error = message

    def _restore_settings(self, explicit_model: bool) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        legacy = {key: self.settings.value(key) for key in self.settings.allKeys()}  # version 1 kept them here
        saved = load_settings(self.paths.data / SETTINGS_FILE, legacy).to_settings()
        if explicit_model or self.panel.model.findData(saved.get("model", "")) < 0:
            saved.pop("model", None)
        self.session.update(**{k: v for k, v in Session.from_settings(saved).__dict__.items()
                               if not k.startswith("_") and k in saved})

    def closeEvent(self, event):
        self.session.live = False
        self.settings.setValue("geometry", self.saveGeometry())
        try:
            save_settings(self.paths.data / SETTINGS_FILE, self.session)
        except OSError as exc:
            log.warning("could not save the settings: %s", exc)
        self.api.stop()
        self.engine.stop()
        self.history.close()
        super().closeEvent(event)

    def dragEnterEvent(self, event):
        if ImageActions.accepts(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event):
        on_canvas = self.canvas_panel.isVisible() and self.canvas_panel.geometry().contains(
            self.canvas_panel.parentWidget().mapFrom(self, event.position().toPoint()))
        if self.actions.drop(event.mimeData(), on_canvas, self.start):
            event.acceptProposedAction()
