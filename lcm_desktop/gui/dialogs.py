"""The one way the app reports a problem: a sheet with one actionable sentence and folded details."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def show_error(parent: QWidget, title: str, message: str, details: str = "", name: str = "errorDialog") -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName(name)
    if details:
        box.setDetailedText(details)
    box.open()  # window-modal sheet on macOS; never blocks the event loop
    return box
