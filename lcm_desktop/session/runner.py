"""The one engine thread: takes jobs from a ``JobQueue`` one at a time, keeps one model loaded, and reports
each job's state, progress and previews through the queue.  The app (``gui.engine_bridge``) and the local
API share one runner and its queue.

No Qt and no torch here: the front end hands in ``build_engine(spec)``, which returns a loaded
``engine.Engine`` (anything with ``generate(request, on_step=, cancel=)``, ``preview(latents)`` and
``model_hash``), so this module stays on the session floor.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import GenerationCancelled, LcmError
from .jobs import EngineSpec, Job, JobQueue, JobState

log = logging.getLogger(__name__)


class EngineRunner:
    def __init__(self, queue: JobQueue, build_engine: Callable[[EngineSpec], Any], writer: Any = None,
                 output_folder: Path | None = None, previews: bool = True):
        """``writer``: an ``outputs.ImageWriter`` that writes kept jobs' PNGs and history rows (None: nothing
        is written); ``output_folder``: where a job without its own folder saves."""
        self.queue = queue
        self._build, self._writer, self._output_folder, self._previews = build_engine, writer, output_folder, previews
        self._engine: Any = None
        self._spec: EngineSpec | None = None
        self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)
        self._first: Callable[[], None] | None = None

    def start(self, first: Callable[[], None] | None = None) -> None:
        """Start the thread; ``first`` runs on it before any job (the app probes its backends there: heavy
        imports stay on one thread, as torch's and transformers' lazy imports are not safe to race)."""
        self._first = first
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Cancel everything, let the running job stop between two steps, end the thread; whether it ended."""
        self.queue.close()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def engine(self) -> Any:
        """The loaded engine (None before the first job): for read-only questions such as its model hash."""
        return self._engine

    def _loop(self) -> None:
        if self._first is not None:
            try:
                self._first()
            except Exception:  # a probe that fails must not stop the engine thread
                log.exception("the engine thread's first task failed")
        while (job := self.queue.take()) is not None:
            self.run(job)
        self._engine = None  # release the model with the thread

    def _engine_for(self, job: Job) -> Any:
        if self._engine is None or self._spec != job.spec:
            self._engine = None  # release the old model before loading the next
            self.queue.notify(job, "loading")
            self._engine, self._spec = self._build(job.spec), job.spec
        return self._engine

    def run(self, job: Job) -> None:
        """One job, start to end; every outcome is reported (the thread never dies of a job)."""
        try:
            if job.cancel_event.is_set():
                raise GenerationCancelled()
            engine = self._engine_for(job)
            if job.cancel_event.is_set():
                raise GenerationCancelled()
            job.total = job.request.steps
            self.queue.notify(job, "started")

            def on_step(progress) -> None:
                preview = None
                if self._previews and progress.step < progress.total and not job.cancel_event.is_set():
                    preview = engine.preview(progress.denoised[:1])[0]
                self.queue.progress(job, progress.step, progress.total, preview)

            started = time.perf_counter()
            result = engine.generate(job.request, on_step=on_step, cancel=job.cancel_event)
            folder = job.output_folder or self._output_folder
            if job.save and self._writer is not None and folder is not None:
                job.saved = self._writer.write(result, folder, tag=str(job.id), model_hash=engine.model_hash,
                                               origin=job.origin)
            job.result = result
            job.seconds = max(time.perf_counter() - started - result.timings.load, 0.0)
            self.queue.finish(job, JobState.FINISHED)
        except GenerationCancelled:
            self.queue.finish(job, JobState.CANCELLED)
        except LcmError as exc:
            job.exception = exc  # its type: the API answers a bad request (InvalidRequestError) with a 4xx
            self.queue.finish(job, JobState.FAILED, error=exc.user_message, details=traceback.format_exc())
        except Exception as exc:  # the last resort: report, keep the thread alive
            log.exception("generation failed")
            self.queue.finish(job, JobState.FAILED, details=traceback.format_exc(),
                              error=f"Generation failed unexpectedly ({type(exc).__name__}: {exc}).")
