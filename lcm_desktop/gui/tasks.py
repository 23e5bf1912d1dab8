"""Background tasks: a function run on a QThread; the converter and style training as child processes.

Like the engine thread, tasks never touch widgets: they emit plain data.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QThread, Signal, Slot

from ..core.errors import LcmError


class Task(QObject):
    """Runs ``fn(on_progress, cancel)`` on its own thread; emits progress, then finished/failed/cancelled."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()

    def __init__(self, fn: Callable[[Callable[[object], None], threading.Event], object],
                 cancelled_error: type[BaseException] | None = None):
        super().__init__()
        self._fn = fn
        self._cancel = threading.Event()
        self._cancelled_error = cancelled_error
        self.thread = QThread()
        self.moveToThread(self.thread)
        self.thread.started.connect(self._run)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    @Slot()
    def _run(self) -> None:
        try:
            result = self._fn(self.progress.emit, self._cancel)
        except LcmError as exc:
            if self._cancel.is_set() or (self._cancelled_error and isinstance(exc, self._cancelled_error)):
                self.cancelled.emit()
            else:
                self.failed.emit(exc.user_message, traceback.format_exc())
        except Exception as exc:  # last resort: report instead of killing the thread silently
            self.failed.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        else:
            self.finished.emit(result)
        finally:
            self.thread.quit()

    def wait(self) -> None:
        self.thread.wait()


class ConvertOutcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    CANCELLED = "cancelled"


class _ChildProcess(QObject):
    """A child process run as ``program + args``; cancel sends SIGTERM (the child cleans up on it)."""

    def _setup(self, program: list[str], args: list[str]) -> None:
        self.process = QProcess(self)
        self._program, self._args, self._cancelled = program, args, False

    def start(self) -> None:
        self.process.start(self._program[0], self._program[1:] + self._args)

    def cancel(self) -> None:
        self._cancelled = True
        self.process.terminate()


class ConvertProcess(_ChildProcess):
    """``python -m convert SOURCE --out OUT`` as a child process (its memory goes back to the OS when done).

    Each line the converter prints is a phase; cancel terminates it, and the converter removes
    its hidden temporary folder on SIGTERM (nothing half-written is left).
    """

    line = Signal(str)
    finished = Signal(str, str)  # ConvertOutcome value, the converter's last error line (when failed)

    def __init__(self, source: Path, out: Path, extra: list[str] | None = None, program: list[str] | None = None):
        super().__init__()
        self._setup(program or [sys.executable, "-m", "convert"], [str(source), "--out", str(out), *(extra or [])])
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._done)
        self._last = ""

    def _read(self) -> None:
        text = bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self._last = line.strip()
                self.line.emit(self._last)

    def _done(self, code: int, status) -> None:
        self._read()
        if self._cancelled:
            self.finished.emit(ConvertOutcome.CANCELLED.value, "Conversion cancelled.")
        elif code == 0:
            self.finished.emit(ConvertOutcome.OK.value, "")
        else:
            self.finished.emit(ConvertOutcome.FAILED.value, self._last.removeprefix("error: "))


class TrainProcess(_ChildProcess):
    """``python -m lcm_desktop train-style … --progress json`` as a child process (issue 25, review B-5).

    The model the training loads, and its memory, stay in the child; the app's engine thread and torch's
    process-wide state (RNG, thread pool) are untouched.  Each ``training.progress`` line on the child's stdout
    becomes an ``event`` (plain data); the child's last stderr line is the failure message.  Cancel sends SIGTERM:
    the child stops after its step, keeps its checkpoint and exits 130.
    """

    event = Signal(object)  # training.progress.TrainEvent
    finished = Signal(str, str)  # ConvertOutcome value, the child's last error line (when failed)

    def __init__(self, args: list[str], env: dict[str, str] | None = None, program: list[str] | None = None):
        super().__init__()
        from PySide6.QtCore import QProcessEnvironment

        self._setup(program or [sys.executable, "-m", "lcm_desktop", "train-style"], [*args, "--progress", "json"])
        if env:
            environment = QProcessEnvironment.systemEnvironment()
            for key, value in env.items():
                environment.insert(key, value)
            self.process.setProcessEnvironment(environment)
        self.process.readyReadStandardOutput.connect(self._read_out)
        self.process.readyReadStandardError.connect(self._read_err)
        self.process.finished.connect(self._done)
        self._out, self._err, self._last = b"", b"", ""

    def wait(self, msecs: int = 120_000) -> bool:
        return self.process.state() == QProcess.ProcessState.NotRunning or self.process.waitForFinished(msecs)

    def _read_out(self) -> None:
        from ..training.progress import MAX_LINE, parse_line

        self._out += bytes(self.process.readAllStandardOutput())
        *lines, self._out = self._out.split(b"\n")
        self._out = self._out[-MAX_LINE:]
        for raw in lines:
            event = parse_line(raw.decode("utf-8", "replace").strip())
            if event is not None:
                self.event.emit(event)

    def _read_err(self) -> None:
        self._err += bytes(self.process.readAllStandardError())
        *lines, self._err = self._err.split(b"\n")
        self._err = self._err[-10_000:]
        for raw in lines:
            text = raw.decode("utf-8", "replace").strip()
            if text.startswith(("error:", "cancelled:")):
                self._last = text

    def _done(self, code: int, status) -> None:
        self._out += b"\n"
        self._err += b"\n"
        self._read_out()
        self._read_err()
        if self._cancelled:
            self.finished.emit(ConvertOutcome.CANCELLED.value, self._last.removeprefix("cancelled: "))
        elif code == 0 and status == QProcess.ExitStatus.NormalExit:
            self.finished.emit(ConvertOutcome.OK.value, "")
        else:
            self.finished.emit(ConvertOutcome.FAILED.value,
                               self._last.removeprefix("error: ") or f"The training process ended (code {code}).")
