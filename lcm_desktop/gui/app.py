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
    paths.logs.mkdir(parents=True, exist_ok=True)
    log_file = paths.logs / "lcm-desktop.log"
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.FileHandler(log_file, encoding="utf-8")],
    )
    return log_file


def main(model: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication, QMessageBox

    paths = AppPaths.default().ensure()
    log_file = _configure_logging(paths)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LCM Desktop")
    app.setOrganizationName("LCM Desktop")

    def excepthook(kind, value, tb):
        logging.getLogger("lcm_desktop").error("uncaught", exc_info=(kind, value, tb))
        box = QMessageBox(QMessageBox.Icon.Critical, "LCM Desktop",
                          f"Something went wrong ({kind.__name__}); details were written to {log_file}.")
        box.setDetailedText("".join(traceback.format_exception(kind, value, tb)))
        box.exec()

    sys.excepthook = excepthook
    window = create_window(model, paths)
    window.show()
    return app.exec()
