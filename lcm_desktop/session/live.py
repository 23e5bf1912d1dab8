"""When Live starts the next generation: plain logic with the time passed in (tests drive it with numbers).

The rule (krita-ai-diffusion's live scheduler, which users like): one generation in flight, never queued;
when it ends and the input has really changed meanwhile, the newest input starts next, so a stroke in
progress never builds a backlog.  "Changed" is keyed on the input itself (the session's ``key()`` and the
sketch's revision), not on edit signals: a no-op edit starts nothing.  A short grace period after the last
edit (0.25 s) applies only when generations are slow (their average over the last ten above 1.5 s), so fast
models follow every stroke and slow ones wait for a pause, but never longer than 3 s after the first
unprocessed edit.  Any running job, kept or live, holds Live back: the queue's ``idle`` answers that.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

GRACE_S = 0.25  # wait this long after the last edit …
SLOW_S = 1.5  # … only when generations take longer than this on average
MAX_WAIT_S = 3.0  # and never longer than this after the first unprocessed edit
RECENT = 10  # generations averaged


class LiveScheduler:
    def __init__(self, grace: float = GRACE_S, slow: float = SLOW_S, max_wait: float = MAX_WAIT_S):
        self.grace, self.slow_after, self.max_wait = grace, slow, max_wait
        self._first_edit: float | None = None  # the oldest edit no generation has seen yet
        self._last_edit: float | None = None
        self._durations: deque[float] = deque(maxlen=RECENT)
        self._last_key: Hashable = None  # the input the last live job was started with

    @property
    def pending(self) -> bool:
        return self._first_edit is not None

    @property
    def slow(self) -> bool:
        return bool(self._durations) and sum(self._durations) / len(self._durations) > self.slow_after

    def edited(self, now: float, key: Hashable = None) -> bool:
        """The input may have changed; ``key`` is the input as it is now (None: always a change).  Returns
        whether it really changed since the last live job started."""
        if key is not None and key == self._last_key:  # back to what the last job had: nothing is pending
            self._first_edit = self._last_edit = None
            return False
        if self._first_edit is None:
            self._first_edit = now
        self._last_edit = now
        return True

    def wait(self, now: float, idle: bool = True) -> float | None:
        """Seconds until the next generation may start (0: now), or None: nothing to start (no edit, or a job
        is running or waiting, ``idle`` False; its end asks again)."""
        if not idle or self._first_edit is None or self._last_edit is None:
            return None
        if not self.slow:
            return 0.0
        return max(0.0, min(self._last_edit + self.grace, self._first_edit + self.max_wait) - now)

    def started(self, key: Hashable = None) -> None:
        """A generation took the current input (``key``): later edits are new."""
        self._last_key = key
        self._first_edit = self._last_edit = None

    def ended(self, seconds: float | None = None) -> None:
        """A live generation ended; ``seconds``: what it took without loading the model (None: it failed or was
        cancelled, and does not count toward "slow")."""
        if seconds is not None:
            self._durations.append(seconds)

    def reset(self) -> None:
        """Live switched off: forget unprocessed edits and the last input (turning it on again regenerates)."""
        self._first_edit = self._last_edit = None
        self._last_key = None
