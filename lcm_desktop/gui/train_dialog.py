""""New Style from Images…": pick a folder of pictures, name the style, train it (LCF) with progress and previews.

Start runs ``training.trainer.train`` on a ``Task`` thread; the worker emits ``TrainUpdate`` (plain numbers and a
QImage), never touching widgets.  Cancel stops between steps and keeps the checkpoint; Start again resumes it.
On success the dialog says where the style went and emits ``styleCreated(path)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from ..core.errors import InvalidRequestError, TrainingCancelled
from ..core.paths import AppPaths, builtin_model_path
from .dialogs import show_error
from .images import pil_to_qimage
from .tasks import Task

PREVIEW_SIDE = 192


@dataclass(frozen=True)
class TrainUpdate:
    """What the training thread tells the dialog after a step."""

    step: int
    total: int
    loss: float
    eta_seconds: float
    preview: QImage | None = None


def eta_text(seconds: float) -> str:
    seconds = int(round(max(0.0, seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s left" if seconds >= 60 else f"{seconds} s left"


class TrainStyleDialog(QDialog):
    styleCreated = Signal(object)  # Path of the new style file

    def __init__(self, paths: AppPaths, model: Path | None = None, parent=None, *, preview_every: int = 50):
        super().__init__(parent)
        self.setObjectName("trainStyleDialog")
        self.setWindowTitle("New Style from Images")
        self.paths = paths
        self.model = Path(model) if model is not None else builtin_model_path()
        self.preview_every = preview_every
        self.task: Task | None = None
        self.output: Path | None = None
        self.last_update: TrainUpdate | None = None

        self.folder = QLineEdit(objectName="trainFolder", placeholderText="a folder of pictures")
        browse = QPushButton("Choose…", objectName="trainBrowse")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.name = QLineEdit(objectName="trainName", placeholderText="my style")
        self.trigger = QLineEdit(objectName="trainTrigger", placeholderText="a word that calls up the style")
        self.steps = QSpinBox(objectName="trainSteps", minimum=1, maximum=100_000, value=1000)
        self.rank = QSpinBox(objectName="trainRank", minimum=1, maximum=128, value=8)
        form = QFormLayout()
        form.addRow("Pictures:", row)
        form.addRow("Name:", self.name)
        form.addRow("Trigger word:", self.trigger)
        form.addRow("Steps:", self.steps)
        form.addRow("Rank:", self.rank)

        self.progress = QProgressBar(objectName="trainProgress", minimum=0, maximum=100, value=0)
        self.status = QLabel("Choose a folder of pictures and a name.", objectName="trainStatus")
        self.status.setWordWrap(True)
        self.preview = QLabel(objectName="trainPreview", alignment=Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(PREVIEW_SIDE, PREVIEW_SIDE)
        self.start_button = QPushButton("Start", objectName="trainStart")
        self.cancel_button = QPushButton("Cancel", objectName="trainCancel", enabled=False)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

    # -- actions ---------------------------------------------------------------------------------
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Pictures for the style")
        if folder:
            self.folder.setText(folder)

    def config(self, resume: bool):
        """The run the widgets describe (``resume``: continue a checkpoint of this name if there is one)."""
        from ..training.trainer import TrainConfig

        trigger = self.trigger.text().strip() or None
        return TrainConfig(folder=Path(self.folder.text().strip()), model=self.model, name=self.name.text().strip(),
                           steps=self.steps.value(), rank=self.rank.value(), trigger=trigger,
                           caption="a {} picture" if trigger else None, resume=resume,
                           preview_every=self.preview_every)

    def start(self) -> None:
        if self.task is not None:
            return
        if not self.folder.text().strip():
            self.status.setText("Choose a folder of pictures first.")
            return
        try:
            config = self.config(resume=True)  # Start after a Cancel (or a crash) continues the checkpoint
        except InvalidRequestError as exc:
            self.status.setText(exc.user_message)
            return
        self.task = Task(lambda on_progress, cancel: _run(config, self.paths, on_progress, cancel), TrainingCancelled)
        self.task.progress.connect(self._on_progress)
        self.task.finished.connect(self._on_finished)
        self.task.failed.connect(self._on_failed)
        self.task.cancelled.connect(self._on_cancelled)
        self._set_running(True)
        self.status.setText("Loading the model and the pictures…")
        self.task.start()

    def cancel(self) -> None:
        if self.task is not None:
            self.status.setText("Stopping after this step…")
            self.task.cancel()

    # -- from the training thread (queued) ----------------------------------------------------------
    def _on_progress(self, update: TrainUpdate) -> None:
        self.last_update = update
        self.progress.setMaximum(update.total)
        self.progress.setValue(update.step)
        self.status.setText(f"Step {update.step} of {update.total} · loss {update.loss:.4f} · "
                            f"{eta_text(update.eta_seconds)}")
        if update.preview is not None:
            self.preview.setPixmap(QPixmap.fromImage(update.preview).scaled(
                PREVIEW_SIDE, PREVIEW_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.FastTransformation))

    def _on_finished(self, output: Path) -> None:
        self._done()
        self.output = output
        self.status.setText(f"Done: the style is in {output}.")
        self.styleCreated.emit(output)

    def _on_failed(self, message: str, details: str) -> None:
        self._done()
        self.status.setText(message)
        show_error(self, "Training failed", message, details, name="trainError")

    def _on_cancelled(self) -> None:
        step = self.last_update.step if self.last_update else 0
        self._done()
        self.status.setText(f"Stopped at step {step}; the checkpoint is kept — Start continues from there.")

    def _done(self) -> None:
        if self.task is not None:
            self.task.wait()
        self.task = None
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for widget in (self.folder, self.name, self.trigger, self.steps, self.rank):
            widget.setEnabled(not running)

    def closeEvent(self, event) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task.wait()
            self.task = None
        super().closeEvent(event)


def _run(config, paths: AppPaths, on_progress, cancel) -> Path:
    """On the training thread: train, turning each step's progress into a ``TrainUpdate`` (QImage, not widgets)."""
    from ..training.trainer import train

    def forward(p) -> None:
        preview = pil_to_qimage(p.preview) if p.preview is not None else None
        on_progress(TrainUpdate(p.step, p.total, p.loss, p.eta_seconds, preview))

    return train(config, paths=paths, on_progress=forward, cancel=cancel).output
