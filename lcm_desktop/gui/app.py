"""QApplication, logging, the last-resort excepthook, and the main window."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

from ..core.paths import AppPaths


def create_window(model: Path | str | None = None, paths: AppPaths | None = None, previews: bool = True):
    """The main window, built without starting an event loop (a QApplication must exist)."""
    from .main_window import MainWindow

    return MainWindow(paths or AppPaths.default(), Path(model) if model else None, previews=previews)


def _configure_logging(paths: AppPaths) -> Path:
    """The log file the crash dialog names.  Added to the root logger even when the CLI configured logging
    first (``logging.basicConfig`` would then do nothing, and the file would never hold the error)."""
    paths.logs.mkdir(parents=True, exist_ok=True)
    log_file = paths.log_file
    root = logging.getLogger()
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == log_file.absolute()
               for h in root.handlers):
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.INFO)
        root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:  # the file gets INFO; the terminal keeps its level
        for other in root.handlers:
            if not isinstance(other, logging.FileHandler) and other.level == logging.NOTSET:
                other.setLevel(root.level or logging.WARNING)
        root.setLevel(logging.INFO)
    return log_file


def main(model: str | None = None, self_test: bool = False) -> int:
    from PySide6.QtWidgets import QApplication, QMessageBox

    paths = AppPaths.default().ensure()
    log_file = _configure_logging(paths)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LCM Desktop")
    app.setOrganizationName("LCM Desktop")

    def excepthook(kind, value, tb):
        logging.getLogger("lcm_desktop").error("uncaught", exc_info=(kind, value, tb))
        if self_test:  # nobody is there to close a dialog: say it and fail
            print(f"self-test: failed: {kind.__name__}: {value}; details in {log_file}", file=sys.stderr, flush=True)
            app.exit(1)
            return
        box = QMessageBox(QMessageBox.Icon.Critical, "LCM Desktop",
                          f"Something went wrong ({kind.__name__}); details were written to {log_file}.")
        box.setDetailedText("".join(traceback.format_exception(kind, value, tb)))
        box.exec()

    sys.excepthook = excepthook
    window = create_window(model, paths)
    if window.history.problem:  # the app starts anyway (history.py); say why the history is not the usual one
        window.statusBar().showMessage(window.history.problem)
    window.show()
    if self_test:
        _schedule_self_test(app, window)
    return app.exec()


FALLBACK_PROMPT = "a red circle"  # for a model that ships no example prompt


def _schedule_self_test(app, window, timeout_s: int = 600) -> None:
    """Open the window, generate one image with the selected (built-in) model, exit 0 — or 1 with the reason."""
    from PySide6.QtCore import QObject, QTimer, Slot

    class SelfTest(QObject):
        @Slot(int, object)
        def finished(self, job, output):
            print(f"self-test: ok, wrote {output.paths[0]} in {output.result.timings.total:.2f}s", flush=True)
            window.close()
            app.exit(0)

        @Slot(int, str, str)
        def failed(self, job, message, details):
            print(f"self-test: failed: {message}", file=sys.stderr, flush=True)
            window.close()
            app.exit(1)

        @Slot()
        def start(self):
            info = window.model_info
            window.panel.prompt.setPlainText(info.defaults.example_prompt if info and info.defaults.example_prompt
                                             else FALLBACK_PROMPT)
            if not window.generate():
                print(f"self-test: failed: {getattr(window, 'last_error', 'could not start')}", file=sys.stderr)
                window.close()  # stops the engine thread before the loop ends
                app.exit(1)

        @Slot()
        def timeout(self):
            print(f"self-test: failed: no image after {timeout_s}s", file=sys.stderr, flush=True)
            window.close()
            app.exit(1)

    tester = SelfTest(window)
    window.engine.finished.connect(tester.finished)
    window.engine.failed.connect(tester.failed)
    QTimer.singleShot(0, tester.start)
    QTimer.singleShot(timeout_s * 1000, tester.timeout)
