"""File ▸ "Serve the API on this Mac": the local API (AUTOMATIC1111's routes, ``gui/api_server.py``) on the
window's own job queue, so other programs share the loaded model.  Turning it on asks for the port and an
optional user and password (remembered in the session); on quit or when turned off the server stops."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLineEdit, QSpinBox, QWidget

from ..core.errors import LcmError
from ..session.jobs import EngineSpec, JobQueue
from ..session.state import Session


class ServeDialog(QDialog):
    def __init__(self, port: int, auth: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Serve the API on this Mac")
        self.setObjectName("serveApiDialog")
        form = QFormLayout(self)
        self.port = QSpinBox(objectName="apiPortSpin")
        self.port.setRange(1024, 65535)
        self.port.setValue(port)
        user, _, password = auth.partition(":")
        self.user = QLineEdit(user, objectName="apiUserEdit", placeholderText="none: anyone on this Mac")
        self.password = QLineEdit(password, objectName="apiPasswordEdit", echoMode=QLineEdit.EchoMode.Password)
        form.addRow("Port (127.0.0.1)", self.port)
        form.addRow("User", self.user)
        form.addRow("Password", self.password)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    @property
    def auth(self) -> str:
        user = self.user.text().strip()
        return f"{user}:{self.password.text()}" if user else ""


class ApiToggle(QObject):
    def __init__(self, action: QAction, queue: JobQueue, session: Session, spec: Callable[[], EngineSpec | None],
                 store, status: Callable[[str, int], None], error: Callable[[str, str], None], parent: QWidget,
                 ask: Callable[[ServeDialog], bool] = lambda dialog: dialog.exec() == QDialog.DialogCode.Accepted):
        super().__init__(parent)
        self.action, self._queue, self._session, self._spec, self._store = action, queue, session, spec, store
        self._status, self._error, self._parent, self._ask = status, error, parent, ask
        self.server = None
        action.setCheckable(True)
        action.toggled.connect(self._toggled)

    def _toggled(self, on: bool) -> None:
        if not on:
            self.stop()
            return
        spec = self._spec()
        dialog = ServeDialog(self._session.api_port, self._session.api_auth, self._parent)
        if spec is None or not self._ask(dialog):
            self.action.setChecked(False)
            return
        self._session.update(api_port=dialog.port.value(), api_auth=dialog.auth)
        from .api_server import AppApiServer

        auth = tuple(dialog.auth.split(":", 1)) if dialog.auth else None
        try:
            self.server = AppApiServer(self._queue, spec, spec.model.name, port=dialog.port.value(), auth=auth,
                                       store=self._store)
            url = self.server.start()
        except (LcmError, OSError) as exc:
            self.server = None
            self.action.setChecked(False)
            self._error(getattr(exc, "user_message", None) or f"The API could not start on port "
                        f"{dialog.port.value()} ({exc}); choose another port.", "")
            return
        self._status(f"Serving the API at {url}", 10000)

    def model_changed(self) -> None:
        spec = self._spec()
        if self.server is not None and spec is not None:
            self.server.set_model(spec, spec.model.name)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
            self._status("Stopped serving the API", 5000)
