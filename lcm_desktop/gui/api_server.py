"""The app's "Serve the API on this Mac" setting: the local API (``lcm_desktop.api``) on the window's own job queue.

    server = AppApiServer(queue, spec, "lcm-demo", port=7860, auth=("ann", "secret"))
    url = server.start()            # listening when it returns; stop() on quit or when the setting is turned off
    server.set_model(spec, name)    # the window selected another model: API requests follow it

API requests are KEPT jobs with origin ``"api"`` on the same queue and engine thread as the window's: they share
the loaded model, are saved with history rows marked as from the API, and never replace a Live update (only a
newer Live update does); Live waits while they run, as it waits for Generate.  No Qt here: the window owns the
setting's widgets and calls these methods.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..api.app import create_app
from ..api.server import ApiServer, backend_chooser, is_loopback
from ..api.service import ApiService, ServedModel, installed_models
from ..core.errors import InvalidRequestError
from ..core.model_info import ModelInfo, describe_model
from ..session.jobs import EngineSpec, JobQueue


class AppApiServer:
    def __init__(self, queue: JobQueue, spec: EngineSpec, name: str, *, host: str = "127.0.0.1", port: int = 7860,
                 auth: tuple[str, str] | None = None, output_folder: Path | None = None,
                 choose: Callable[[ModelInfo], str] | None = None, list_models: bool = True, store=None):
        if not is_loopback(host) and auth is None:
            raise InvalidRequestError("auth", None, f"a user and password when serving on {host}")
        from ..models.styles import StyleStore

        self._queue, self._host, self._port, self._auth = queue, host, port, auth
        self._choose = choose or backend_chooser()
        store = store or StyleStore()  # the app hands in its one store
        model = _served(spec, name)
        listed = (lambda: installed_models(self._choose)) if list_models else (lambda: [])
        self.service = ApiService(queue, model, models=listed, styles=store.styles, style_path=store.path_of,
                                  output_folder=output_folder)
        self._server: ApiServer | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        """Listen and serve on a thread; the URL clients use (``…/sdapi/v1``)."""
        if self._server is None:
            server = ApiServer(create_app(self.service, auth=self._auth), self._host, self._port)
            server.start()
            self._server = server
        return f"{self._server.url}/sdapi/v1"

    def stop(self, timeout: float | None = 10) -> bool:
        """Stop listening (a request in flight is answered first, within ``timeout``); jobs already queued run."""
        server, self._server = self._server, None
        return server.stop(timeout) if server is not None else True

    def set_model(self, spec: EngineSpec, name: str) -> None:
        """The window's model changed: API requests run on it from now on."""
        self.service.serve(_served(spec, name))


def _served(spec: EngineSpec, name: str) -> ServedModel:
    return ServedModel(name, spec.model, spec.backend, describe_model(spec.model), spec.tiny_decoder, spec.cache_dir)
