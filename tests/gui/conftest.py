"""The real window, offscreen, and a gate that holds the engine inside a UNet call (no sleeps)."""

from __future__ import annotations

import threading

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
