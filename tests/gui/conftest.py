"""The real window, offscreen, and a gate that holds the engine inside a UNet call (no sleeps)."""

from __future__ import annotations

import threading
import time

import pytest

from lcm_desktop.core.paths import AppPaths
from lcm_desktop.gui.app import create_window


@pytest.fixture
def window(qtbot, tiny_lcm):
    win = create_window(model=tiny_lcm, paths=AppPaths.default())
    qtbot.addWidget(win)
    win.show()
    yield win
    if win.isVisible():
        win.close()


class Gate:
    """Holds every UNet call of the engine thread until ``open()``; ``entered`` is set by the first call held."""

    def __init__(self):
        self.entered, self._open = threading.Event(), threading.Event()

    def open(self) -> None:
        self._open.set()


@pytest.fixture
def gate(monkeypatch):
    from lcm_desktop.engine.torch_backend import TorchDenoiser

    real_call = TorchDenoiser.__call__
    held = Gate()

    def gated_call(self, *args, **kwargs):  # on the engine thread
        held.entered.set()
        if not held._open.wait(timeout=60):
            raise RuntimeError("the test never opened the gate")
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(TorchDenoiser, "__call__", gated_call)
    yield held
    held.open()


@pytest.fixture
def submitted(window):
    """Every Job the window submits, in order."""
    jobs = []
    window.engine.queue.subscribe(lambda job, event: jobs.append(job) if event == "queued" else None)
    return jobs


class Ticks:
    """A 5 ms timer on the GUI thread and the gaps between its ticks: how long the event loop went unserved.

    A fixed "no gap over 100 ms" fails on a loaded 2-core machine (the OS alone preempts the GUI thread that
    long), so tests bound the share of the measured span spent in long gaps instead: work done on the GUI
    thread for the length of a generation makes that share close to 1, preemption by other processes does not.
    """

    LONG = 0.100  # seconds: a gap a user would notice

    def __init__(self, on_tick=None):
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self._on_tick = on_tick
        self._last = 0.0
        self._timer = QTimer(interval=5)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = self._started = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        now = time.perf_counter()
        self.gaps.append(now - self._last)  # the gap still open: a loop blocked to the end has no tick at all
        self.span = now - self._started

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now
        if self._on_tick is not None:
            self._on_tick()

    @property
    def stalled_share(self) -> float:
        """The share of the span spent in gaps over ``LONG`` (0 when the loop never waited that long)."""
        return sum(g for g in self.gaps if g > self.LONG) / self.span


@pytest.fixture
def unet_threads(monkeypatch) -> list[bool]:
    """For every UNet call of the engine, whether it ran on the GUI (main) thread."""
    from lcm_desktop.engine.torch_backend import TorchDenoiser

    real_call = TorchDenoiser.__call__
    on_gui = []

    def recording_call(self, *args, **kwargs):
        on_gui.append(threading.current_thread() is threading.main_thread())
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(TorchDenoiser, "__call__", recording_call)
    return on_gui


@pytest.fixture
def ticks():
    """``ticks(on_tick=None)``: a new, not yet started ``Ticks``."""
    return Ticks
