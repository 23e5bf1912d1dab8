"""Live mode on the GUI thread: ``session.live.LiveScheduler`` (the rule) driven by one single-shot timer.

It listens instead of being told: the session's and the sketch's changes call ``edited()``; every job the app
queues and every job that ends reach ``job_queued``/``job_ended`` (the engine bridge's signals); the job
queue's ``idle`` says whether any job, kept or live, still runs or waits.  The input's ``key`` decides whether
an edit changed anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from PySide6.QtCore import QObject, QTimer

from ..session.jobs import Job, JobKind
from ..session.live import LiveScheduler


class LiveMode(QObject):
    def __init__(self, submit: Callable[[], bool], key: Callable[[], Hashable], idle: Callable[[], bool],
                 parent=None, clock: Callable[[], float] = time.monotonic):
        """``submit()`` starts a live job and returns whether it did; ``key()`` is the input as it is now."""
        super().__init__(parent)
        self.scheduler = LiveScheduler()
        self._submit, self._key, self._idle, self._clock = submit, key, idle, clock
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.poll)
        self.enabled = False
        self._submitting = False  # a submit changes the input (an unlocked seed is drawn): no re-entry

    def set_enabled(self, on: bool) -> None:
        if on == self.enabled:
            return
        self.enabled = on
        if on:
            self.edited()
        else:
            self._timer.stop()
            self.scheduler.reset()

    def edited(self) -> None:
        if self.enabled and self.scheduler.edited(self._clock(), self._key()) and not self._submitting:
            self.poll()

    def job_queued(self, job: Job) -> None:
        """A job the user asked to keep took the current input: Live does not make it again."""
        if self.enabled and job.kind is JobKind.KEPT:
            self.scheduler.started(self._key())

    def job_ended(self, job: Job) -> None:
        if job.kind is JobKind.LIVE:
            self.scheduler.ended(job.seconds)
        self.poll()

    def poll(self) -> None:
        if not self.enabled:
            return
        wait = self.scheduler.wait(self._clock(), self._idle())
        if wait is None:
            return
        if wait > 0:
            self._timer.start(max(1, round(wait * 1000)))
            return
        self._timer.stop()
        self._submitting = True
        try:
            submitted = self._submit()
        finally:
            self._submitting = False
        if submitted:
            self.scheduler.started(self._key())
        else:
            self.scheduler.reset()  # an invalid request (e.g. an empty prompt): wait for the next edit
