"""The job queue the window, Live and the local API share (krita-ai-diffusion's ``JobQueue`` with kinds).

Its rules, stated once:
- one job runs at a time (the engine thread takes them in order: ``take``);
- a new LIVE job replaces a LIVE job still queued (the newest input wins; the replaced one is CANCELLED, so
  a stroke never builds a backlog); KEPT jobs (Generate, API requests) queue first-in first-out;
- Live waits for any running job, kept or live: ``idle`` is the one answer it asks (``session.live``).

Every change of a job reaches the subscribers as ``(job, event)`` with event ``"queued"`` (submitted),
``"loading"``, ``"started"``, ``"state"`` (RUNNING, then FINISHED, CANCELLED or FAILED), ``"progress"`` or
``"preview"``, on the thread that made it (the engine thread for progress, the caller for submit/cancel):
a GUI forwards them to its own thread; nothing here knows Qt.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ..core.request import GenerationRequest, GenerationResult

Listener = Callable[["Job", str], None]


class JobKind(Enum):
    LIVE = "live"  # a live update: shown, not saved; replaced while queued by a newer one
    KEPT = "kept"  # Generate or an API request: saved with its history row


class JobState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def done(self) -> bool:
        return self in (JobState.FINISHED, JobState.CANCELLED, JobState.FAILED)


@dataclass(frozen=True)
class EngineSpec:
    """Which engine runs a job: the runner keeps one loaded and reloads only when this changes."""

    model: Path
    backend: str = "cpu"  # a BackendChoice key (engine.backends)
    tiny_decoder: Path | None = None  # AutoencoderTiny for cheap previews and live decodes
    cache_dir: Path | None = None  # compiled Core ML models


@dataclass(eq=False)
class Job:
    id: int
    kind: JobKind
    request: GenerationRequest
    spec: EngineSpec
    origin: str = "app"  # "app" or "api": where it came from (recorded in the history)
    output_folder: Path | None = None  # None: the runner's default folder
    state: JobState = JobState.QUEUED
    step: int = 0
    total: int = 0
    preview: Any = None  # the latest step's preview (PIL), while running
    result: GenerationResult | None = None
    saved: list = field(default_factory=list)  # outputs.SavedImage of each written PNG (kept jobs)
    error: str | None = None  # the one-line message of a FAILED job
    details: str = ""  # its traceback, for a "details" fold
    exception: Exception | None = field(default=None, repr=False)  # a FAILED job's LcmError (its type, for the API)
    seconds: float | None = None  # run time without loading the model (FINISHED only: Live's "slow" rule)
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def save(self) -> bool:
        return self.kind is JobKind.KEPT

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished, failed or was cancelled; False on timeout."""
        return self._done.wait(timeout)


class JobQueue:
    """Thread-safe.  ``submit`` from any thread; ``take`` from the engine runner's."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._queued: deque[Job] = deque()
        self._running: Job | None = None
        self._listeners: list[Listener] = []
        self._ids = itertools.count(1)
        self._closed = False

    # -- observers -----------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def notify(self, job: Job, event: str) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(job, event)

    # -- state ------------------------------------------------------------------------------------------
    @property
    def running(self) -> Job | None:
        return self._running

    @property
    def queued(self) -> list[Job]:
        with self._lock:
            return list(self._queued)

    @property
    def idle(self) -> bool:
        """No job running or waiting: Live may start one."""
        with self._lock:
            return self._running is None and not self._queued

    # -- the front ends' side ------------------------------------------------------------------------------
    def submit(self, kind: JobKind, request: GenerationRequest, spec: EngineSpec, *, origin: str = "app",
               output_folder: Path | None = None) -> Job:
        job = Job(next(self._ids), kind, request, spec, origin, output_folder)
        with self._lock:
            if self._closed:
                raise RuntimeError("the job queue is closed")
            replaced = [j for j in self._queued if j.kind is JobKind.LIVE] if kind is JobKind.LIVE else []
            for old in replaced:
                self._queued.remove(old)
            self._queued.append(job)
            self._lock.notify_all()
        for old in replaced:
            self._finish(old, JobState.CANCELLED)
        self.notify(job, "queued")  # (the runner may have taken it already: the event says what happened)
        return job

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued job now, or the running one between two steps; False when no such job is left."""
        with self._lock:
            queued = next((j for j in self._queued if j.id == job_id), None)
            if queued is not None:
                self._queued.remove(queued)
            running = self._running if self._running is not None and self._running.id == job_id else None
        if queued is not None:
            self._finish(queued, JobState.CANCELLED)
            return True
        if running is not None:
            running.cancel_event.set()
            return True
        return False

    def interrupt(self) -> None:
        """Cancel the running job between two steps (A1111's ``interrupt``)."""
        running = self._running
        if running is not None:
            running.cancel_event.set()

    def cancel_all(self) -> None:
        with self._lock:
            dropped, self._queued = list(self._queued), deque()
        for job in dropped:
            self._finish(job, JobState.CANCELLED)
        self.interrupt()

    def close(self) -> None:
        """No more jobs: queued ones are cancelled, the running one is asked to stop, ``take`` returns None."""
        self.cancel_all()
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    # -- the runner's side -----------------------------------------------------------------------------------
    def take(self, timeout: float | None = None) -> Job | None:
        """The next job, now RUNNING (blocks up to ``timeout``); None when closed or on timeout."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._queued or self._closed, timeout):
                return None
            if self._closed:
                return None
            job = self._queued.popleft()
            self._running = job
            job.state = JobState.RUNNING
        self.notify(job, "state")
        return job

    def progress(self, job: Job, step: int, total: int, preview: Any = None) -> None:
        job.step, job.total = step, total
        self.notify(job, "progress")
        if preview is not None:
            job.preview = preview
            self.notify(job, "preview")

    def finish(self, job: Job, state: JobState, *, error: str | None = None, details: str = "") -> None:
        """The running job ended (FINISHED with its result set, FAILED with its message, or CANCELLED)."""
        with self._lock:
            if self._running is job:
                self._running = None
        job.error, job.details = error, details
        self._finish(job, state)

    def _finish(self, job: Job, state: JobState) -> None:
        job.state = state
        job.preview = None
        job._done.set()
        self.notify(job, "state")
