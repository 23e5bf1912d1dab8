"""Live mode: when to start the next generation while the user types or paints.

The rule (krita-ai-diffusion's live scheduler, which users like): one generation in flight, never
queued; when it finishes and the input has changed meanwhile, the newest input starts next, so a stroke
in progress never builds a backlog.  A short grace period after the last edit (0.25 s) applies only when
generations are slow (their average over the last ten above 1.5 s), so fast models follow every stroke and
slow ones wait for a pause, but never longer than 3 s after the first unprocessed edit.

``LiveScheduler`` is plain logic with the time passed in (tests drive it with numbers, no sleeps);
``LiveMode`` runs it on the GUI thread with one single-shot timer.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

GRACE_S = 0.25  # wait this long after the last edit …
SLOW_S = 1.5  # … only when generations take longer than this on average
MAX_WAIT_S = 3.0  # and never longer than this after the first unprocessed edit
RECENT = 10  # generations averaged


class LiveScheduler:
    def __init__(self, grace: float = GRACE_S, slow: float = SLOW_S, max_wait: float = MAX_WAIT_S):
        self.grace, self.slow_after, self.max_wait = grace, slow, max_wait
        self.in_flight = False
        self._first_edit: float | None = None  # the oldest edit no generation has seen yet
        self._last_edit: float | None = None
        self._durations: deque[float] = deque(maxlen=RECENT)

    @property
    def pending(self) -> bool:
        return self._first_edit is not None

    @property
    def slow(self) -> bool:
        return bool(self._durations) and sum(self._durations) / len(self._durations) > self.slow_after

    def edited(self, now: float) -> None:
        if self._first_edit is None:
            self._first_edit = now
        self._last_edit = now

    def wait(self, now: float) -> float | None:
        """Seconds until the next generation may start (0: now), or None: nothing to start (no edit, or one is
        in flight; its end asks again)."""
        if self.in_flight or self._first_edit is None or self._last_edit is None:
            return None
        if not self.slow:
            return 0.0
        return max(0.0, min(self._last_edit + self.grace, self._first_edit + self.max_wait) - now)

    def started(self) -> None:
        """A generation took the current input: later edits are new."""
        self.in_flight = True
        self._first_edit = self._last_edit = None

    def ended(self, seconds: float | None = None) -> None:
        """The generation in flight ended; ``seconds``: what it took without loading the model (None: it failed
        or was cancelled, and does not count toward "slow")."""
        if seconds is not None:
            self._durations.append(seconds)
        self.in_flight = False

    def reset(self) -> None:
        """Live switched off: forget unprocessed edits (a generation in flight still ends normally)."""
        self._first_edit = self._last_edit = None


class LiveMode(QObject):
    """Drives a ``LiveScheduler`` on the GUI thread: ``edited()`` on every change, ``ended()`` when a live job
    ends; ``submit()`` (the window's) starts a live generation and returns whether it did."""

    def __init__(self, submit: Callable[[], bool], parent=None, clock: Callable[[], float] = time.monotonic):
        super().__init__(parent)
        self.scheduler = LiveScheduler()
        self._submit, self._clock = submit, clock
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.poll)
        self.enabled = False

    def set_enabled(self, on: bool) -> None:
        self.enabled = on
        if on:
            self.edited()
        else:
            self._timer.stop()
            self.scheduler.reset()

    def edited(self) -> None:
        if self.enabled:
            self.scheduler.edited(self._clock())
            self.poll()

    def taken(self) -> None:
        """A job the user asked to keep took the current input: Live waits for it as for its own."""
        self.scheduler.started()

    def ended(self, seconds: float | None = None) -> None:
        self.scheduler.ended(seconds)
        self.poll()

    def poll(self) -> None:
        if not self.enabled:
            return
        wait = self.scheduler.wait(self._clock())
        if wait is None:
            return
        if wait > 0:
            self._timer.start(max(1, round(wait * 1000)))
            return
        self._timer.stop()
        if self._submit():
            self.scheduler.started()
        else:
            self.scheduler.reset()  # an invalid request (e.g. an empty prompt): wait for the next edit
