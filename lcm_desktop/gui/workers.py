"""The engine thread: one long-lived worker owns the loaded model and runs jobs one at a time.

Requests arrive by queued signal.  A newer request replaces a pending one that has not started (live
mode never has more than one in flight: see ``gui.live``).  The worker never touches widgets or QPixmap:
it emits QImage and plain data; the GUI thread converts.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtGui import QImage

from ..core.errors import GenerationCancelled, LcmError
from ..core.request import GenerationRequest, GenerationResult
from ..outputs import ImageWriter, SavedImage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    id: int
    request: GenerationRequest
    model: Path
    backend: str = "cpu"  # a BackendChoice key (engine.backends)
    save: bool = True  # False for live updates: shown, not written (Generate keeps one)
    output_folder: Path | None = None  # None: the app's output folder
    cache_dir: Path | None = None  # compiled Core ML models
    tiny_decoder: Path | None = None  # AutoencoderTiny for cheap previews


def pil_to_qimage(image) -> QImage:
    """A deep-copied QImage (safe to hand across threads) from a PIL image."""
    rgb = image.convert("RGB")
    data = rgb.tobytes()
    qimage = QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888)
    return qimage.copy()


class EngineWorker(QObject):
    """Lives in its own QThread.  Connect ``requested`` → ``_wake`` with a queued connection."""

    started = Signal(int, int)  # job id, total steps
    progress = Signal(int, int, int, float)  # job id, step, total, steps per second
    preview = Signal(int, QImage)
    finished = Signal(int, object)  # job id, JobOutput
    failed = Signal(int, str, str)  # job id, user message, details
    cancelled = Signal(int)
    loading = Signal(str)  # model name
    capabilities = Signal(list)  # list[BackendStatus]
    requested = Signal()

    def __init__(self, writer: ImageWriter, output_folder: Path, previews: bool = True):
        """``writer`` writes each result's PNGs and history rows, on this thread; ``output_folder`` is where
        a job without its own folder saves."""
        super().__init__()
        self._writer = writer
        self._output_folder = output_folder
        self._previews = previews
        self._lock = threading.Lock()
        self._pending: Job | None = None
        self._current_cancel: threading.Event | None = None
        self._engine = None
        self._engine_key = None
        self.requested.connect(self._wake)

    # -- called from the GUI thread -------------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self._lock:
            dropped, self._pending = self._pending, job
        if dropped is not None:
            self.cancelled.emit(dropped.id)  # never started: its sender hears it ended
        self.requested.emit()

    def cancel(self) -> None:
        with self._lock:
            dropped, self._pending = self._pending, None
            if self._current_cancel is not None:
                self._current_cancel.set()
        if dropped is not None:
            self.cancelled.emit(dropped.id)

    # -- on the worker thread ----------------------------------------------------------------------
    @Slot()
    def probe(self) -> None:
        from ..engine.backends import CHOICES, BackendStatus, probe_backends

        try:
            statuses = probe_backends()
        except Exception as exc:  # a broken install: say so in the menu, keep the window
            log.exception("probing the backends failed")
            why = f"the backends could not be checked ({type(exc).__name__}: {exc})"[:200]
            statuses = [BackendStatus(c, False, why) for c in CHOICES]
        self.capabilities.emit(statuses)

    @Slot()
    def _wake(self) -> None:
        with self._lock:
            job, self._pending = self._pending, None
            if job is None:
                return
            cancel = threading.Event()
            self._current_cancel = cancel
        try:
            self._run(job, cancel)
        finally:
            with self._lock:
                self._current_cancel = None

    def _engine_for(self, job: Job):
        from ..engine.backends import choice
        from ..engine.engine import Engine
        from ..models.styles import StyleStore

        key = (str(job.model), job.backend, str(job.tiny_decoder))
        if self._engine is None or self._engine_key != key:
            self._engine = None  # release the old model before loading the next
            self.loading.emit(job.model.name)
            loader = choice(job.backend).loader(job.model, tiny_decoder=job.tiny_decoder, cache_dir=job.cache_dir)
            engine = Engine(loader, styles=StyleStore().path_of)  # a request's styles, by installed name
            engine.load()
            self._engine, self._engine_key = engine, key
        return self._engine

    def _run(self, job: Job, cancel: threading.Event) -> None:
        try:
            engine = self._engine_for(job)
            if cancel.is_set():
                raise GenerationCancelled()
            self.started.emit(job.id, job.request.steps)
            start = time.perf_counter()

            def on_step(progress):
                rate = progress.step / max(time.perf_counter() - start, 1e-6)
                self.progress.emit(job.id, progress.step, progress.total, rate)
                if self._previews and progress.step < progress.total and not cancel.is_set():
                    self.preview.emit(job.id, pil_to_qimage(engine.preview(progress.denoised[:1])[0]))

            result = engine.generate(job.request, on_step=on_step, cancel=cancel)
            saved = self._writer.write(result, job.output_folder or self._output_folder, tag=str(job.id),
                                       model_hash=engine.model_hash) if job.save else []
            images = [pil_to_qimage(im) for im in result.images]
            self.finished.emit(job.id, JobOutput(result, saved, images))
        except GenerationCancelled:
            self.cancelled.emit(job.id)
        except LcmError as exc:
            self.failed.emit(job.id, exc.user_message, traceback.format_exc())
        except Exception as exc:  # the last resort: report, keep the thread alive
            log.exception("generation failed")
            self.failed.emit(job.id, f"Generation failed unexpectedly ({type(exc).__name__}: {exc}).",
                             traceback.format_exc())


@dataclass(frozen=True)
class JobOutput:
    result: GenerationResult
    saved: list[SavedImage]
    images: list[QImage]

    @property
    def paths(self) -> list[Path]:
        return [s.path for s in self.saved]


class EngineThread:
    """Owns the QThread and its worker; ``stop()`` cancels, quits and waits (closeEvent)."""

    _ids = itertools.count(1)

    def __init__(self, writer: ImageWriter, output_folder: Path, previews: bool = True):
        self.thread = QThread()
        self.thread.setObjectName("engine")
        self.worker = EngineWorker(writer, output_folder, previews)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.probe)

    def start(self) -> None:
        """Start the thread (it probes the backends first): after the window has connected the worker's signals,
        or a fast probe's result would be lost."""
        self.thread.start()

    def next_id(self) -> int:
        return next(self._ids)

    def stop(self) -> None:
        self.worker.cancel()
        self.thread.quit()
        self.thread.wait()
