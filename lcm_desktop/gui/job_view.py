"""How the window shows the job it is following: progress bar, previews, the result, the gallery's new
entries, the status line and errors (a dialog for a kept job, the status bar for a live update).  It renders
what the engine bridge reports and decides nothing about jobs."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QProgressBar

from ..core.presets import preset_named
from ..session.jobs import Job, JobKind
from .engine_bridge import EngineBridge, JobOutput
from .gallery import Gallery
from .image_view import ImageView

LIVE_NOTE = "Live · {steps} · Generate (Ctrl+Return) keeps this picture"


def progress_bar() -> QProgressBar:
    bar = QProgressBar()
    bar.setObjectName("progressBar")
    bar.setAccessibleName("Progress")
    bar.setTextVisible(True)
    bar.setFormat("Ready")
    bar.setValue(0)
    return bar


class JobView(QObject):
    def __init__(self, progress: QProgressBar, view: ImageView, gallery: Gallery, timing: QLabel,
                 set_busy: Callable[[bool], None], status: Callable[[str, int], None],
                 error: Callable[[str, str], None], parent=None):
        super().__init__(parent)
        self.progress, self.view, self.gallery, self.timing = progress, view, gallery, timing
        self._set_busy, self._status, self._error = set_busy, status, error
        self._shown: int | None = None  # the job whose progress and result are shown
        self._live = False
        self.busy = False

    def connect(self, engine: EngineBridge) -> None:
        engine.loading.connect(self._loading)
        engine.started.connect(lambda job_id, total: self._progress(job_id, 0, total, 0.0))
        engine.progress.connect(self._progress)
        engine.preview.connect(self._preview)
        engine.finished.connect(self._finished)
        engine.failed.connect(self._failed)
        engine.cancelled.connect(self._cancelled)
        engine.served.connect(self._add_to_gallery)

    def show(self, job: Job) -> None:
        """Follow ``job`` (the newest the window submitted)."""
        self._shown, self._live = job.id, job.kind is JobKind.LIVE
        self._busy(True)
        self.progress.setFormat("Starting…")

    def _busy(self, busy: bool) -> None:
        self.busy = busy
        self._set_busy(busy)

    def _loading(self, name: str) -> None:
        self.progress.setRange(0, 0)  # busy indicator while the model loads
        self.progress.setFormat(f"Loading {name}…")

    def _progress(self, job_id: int, step: int, total: int, rate: float) -> None:
        if job_id == self._shown:
            self.progress.setRange(0, total)
            self.progress.setValue(step)
            self.progress.setFormat(f"Step {step}/{total}" + (f" · {rate:.1f} it/s" if step else ""))

    def _preview(self, job_id: int, image: QImage) -> None:
        if job_id == self._shown:
            self.view.show_image(image, preview=True)

    def _add_to_gallery(self, output: JobOutput) -> None:
        for saved, image in zip(output.saved, output.images):
            if saved.entry is not None:
                self.gallery.add_entry(saved.entry, image)

    def _finished(self, job_id: int, output: JobOutput) -> None:
        result = output.result
        self._add_to_gallery(output)
        if job_id != self._shown:
            return  # a job the user moved on from (kept in history when it was saved, not shown)
        self.view.show_image(output.images[0], output.paths[0] if output.paths else None)
        per_image = result.timings.total / max(len(output.images), 1)
        self.timing.setText(f"{per_image:.2f} s/image · seed {result.seeds[0]}")
        note = " · negative prompt ignored by this model" if result.negative_prompt_ignored else ""
        if result.truncation_note:
            note += f" · {result.truncation_note}"
        steps = f"{result.request.steps} step{'s' if result.request.steps != 1 else ''}"
        if result.request.sampler:
            steps += f" {preset_named(result.request.sampler).label}"
        saved = f"Saved {output.paths[0].name}" if output.paths else LIVE_NOTE.format(steps=steps) if self._live \
            else "Done"
        self._status(saved + note, 15000 if result.truncation_note else 6000)
        self.progress.setFormat(f"Done · {per_image:.2f} s/image")
        self._busy(False)

    def _failed(self, job_id: int, message: str, details: str) -> None:
        if job_id == self._shown:
            self._busy(False)
            self.progress.setFormat("Failed")
            if self._live:
                self._status(message, 8000)  # live: no dialog per keystroke or stroke
            else:
                self._error(message, details)

    def _cancelled(self, job_id: int) -> None:
        if job_id == self._shown:
            self._busy(False)
            self.progress.setValue(0)
            self.progress.setFormat("Cancelled")
