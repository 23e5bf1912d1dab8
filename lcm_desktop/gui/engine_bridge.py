"""The app's side of the one engine thread: a ``session.JobQueue`` run by a ``session.EngineRunner``, with the
queue's events turned into Qt signals for the window (they are emitted on the engine thread and, by Qt's
queued connections, handled on the GUI thread).  Previews become QImages here, off the GUI thread; nothing
here touches a widget or a QPixmap.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from ..core.request import GenerationRequest, GenerationResult
from ..engine.backends import load_engine
from ..outputs import ImageWriter, SavedImage
from ..session.jobs import EngineSpec, Job, JobKind, JobQueue, JobState
from ..session.runner import EngineRunner
from .images import pil_to_qimage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOutput:
    result: GenerationResult
    saved: list[SavedImage]
    images: list[QImage]
    job: Job | None = None

    @property
    def paths(self) -> list[Path]:
        return [s.path for s in self.saved]


class EngineBridge(QObject):
    started = Signal(int, int)  # job id, total steps
    progress = Signal(int, int, int, float)  # job id, step, total, steps per second
    preview = Signal(int, QImage)
    finished = Signal(int, object)  # job id, JobOutput
    failed = Signal(int, str, str)  # job id, user message, details
    cancelled = Signal(int)
    queued = Signal(object)  # a Job the app submitted (on the GUI thread, at once: Live listens)
    ended = Signal(object)  # the Job, after any of the three above (Live listens)
    loading = Signal(str)  # model name
    capabilities = Signal(list)  # list[BackendStatus]
    served = Signal(object)  # JobOutput of a finished API job (saved: the gallery lists it)

    def __init__(self, writer: ImageWriter, output_folder: Path, styles, previews: bool = True,
                 queue: JobQueue | None = None):
        super().__init__()
        self.queue = queue or JobQueue()
        self.runner = EngineRunner(self.queue, lambda spec: load_engine(
            spec.model, spec.backend, tiny_decoder=spec.tiny_decoder, cache_dir=spec.cache_dir, styles=styles),
            writer, output_folder, previews)
        self._started_at: dict[int, float] = {}
        self._unsubscribe = self.queue.subscribe(self._on_event)

    def start(self) -> None:
        """Start the engine thread and probe the backends (after the window connected the signals)."""
        self.runner.start(first=self._probe)

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel, let the running job stop between two steps, end the thread (closeEvent)."""
        self._unsubscribe()
        if not self.runner.stop(timeout):
            log.warning("the engine thread did not stop within %s s", timeout)

    def submit(self, kind: JobKind, request: GenerationRequest, spec: EngineSpec,
               output_folder: Path | None = None) -> Job:
        return self.queue.submit(kind, request, spec, origin="app", output_folder=output_folder)

    def cancel(self) -> None:
        """Cancel the app's own jobs (queued and running); an API client's jobs are its own business."""
        jobs = self.queue.queued + ([self.queue.running] if self.queue.running is not None else [])
        for job in jobs:
            if job.origin == "app":
                self.queue.cancel(job.id)

    # -- on the engine thread (the probe first, then the queue's events) ------------------------------------
    def _probe(self) -> None:
        from ..engine.backends import CHOICES, BackendStatus, probe_backends

        try:
            statuses = probe_backends()
        except Exception as exc:  # a broken install: say so in the menu, keep the window
            log.exception("probing the backends failed")
            why = f"the backends could not be checked ({type(exc).__name__}: {exc})"[:200]
            statuses = [BackendStatus(c, False, why) for c in CHOICES]
        self.capabilities.emit(statuses)

    def _on_event(self, job: Job, event: str) -> None:
        if job.origin != "app":
            if event == "state" and job.state is JobState.FINISHED and job.result is not None and job.saved:
                images = [pil_to_qimage(image) for image in job.result.images]
                self.served.emit(JobOutput(job.result, list(job.saved), images, job))
            return
        if event == "queued":
            self.queued.emit(job)
        elif event == "loading":
            self.loading.emit(job.spec.model.name)
        elif event == "started":
            self._started_at[job.id] = time.perf_counter()
            self.started.emit(job.id, job.total)
        elif event == "progress":
            rate = job.step / max(time.perf_counter() - self._started_at.get(job.id, time.perf_counter()), 1e-6)
            self.progress.emit(job.id, job.step, job.total, rate)
        elif event == "preview" and job.preview is not None:
            self.preview.emit(job.id, pil_to_qimage(job.preview))
        elif event == "state" and job.state.done:
            self._started_at.pop(job.id, None)
            if job.state is JobState.FINISHED and job.result is not None:
                images = [pil_to_qimage(image) for image in job.result.images]
                self.finished.emit(job.id, JobOutput(job.result, list(job.saved), images, job))
            elif job.state is JobState.FAILED:
                self.failed.emit(job.id, job.error or "Generation failed.", job.details)
            else:
                self.cancelled.emit(job.id)
            self.ended.emit(job)
