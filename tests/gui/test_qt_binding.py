"""The Qt binding itself: PySide6 6.12.0 under Python 3.11 lost one reference to ``None`` per Qt call that returns
nothing and one to ``True`` per signal emit, so a long session aborted ("Fatal Python error: none_dealloc").
pyproject.toml pins a release without it; this keeps the pin honest."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    ping = Signal()


def test_qt_calls_and_signals_keep_the_reference_counts_of_none_and_true():
    emitter = _Emitter()
    emitter.ping.connect(lambda: None)
    emitter.setObjectName("warm up")
    emitter.ping.emit()
    none, true = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(2000):
        emitter.setObjectName("x")
        emitter.ping.emit()
    assert sys.getrefcount(None) > none - 100 and sys.getrefcount(True) > true - 100
