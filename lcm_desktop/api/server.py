"""Running the local API: the engine it builds, the queue and runner of ``lcm-desktop serve``, and uvicorn.

    server = ApiServer(create_app(service), "127.0.0.1", 7860)
    server.start()          # listening when this returns (the socket is bound first), served on a thread
    server.stop()

The app hosts the same server on its own queue (``gui/api_server.py``); ``lcm-desktop serve`` runs it in the
foreground (``ApiServer.serve_forever``) on a queue and ``EngineRunner`` of its own (``Hosting``).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.model_info import ModelInfo
from ..core.paths import AppPaths
from ..session.jobs import EngineSpec, JobQueue
from ..session.runner import EngineRunner

log = logging.getLogger(__name__)
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_engine(spec: EngineSpec) -> Any:
    """The loaded engine for a job's spec, styles from the style store."""
    from ..engine.backends import load_engine
    from ..models.styles import StyleStore

    return load_engine(spec.model, spec.backend, tiny_decoder=spec.tiny_decoder, cache_dir=spec.cache_dir,
                       styles=StyleStore().path_of)


def preloaded(spec: EngineSpec, build: Callable[[EngineSpec], Any] = build_engine) -> Callable[[EngineSpec], Any]:
    """Load ``spec``'s engine now (a broken model fails before the server listens; the first request does not
    wait for the load) and hand it to the runner the first time it asks for that spec."""
    ready = {spec: build(spec)}
    return lambda wanted: ready.pop(wanted, None) or build(wanted)


def backend_chooser() -> Callable[[ModelInfo], str]:
    """``info → backend key``: the best backend that runs the model's kind here (probed once per kind of backend,
    when first needed: coremltools is imported only for a Core ML model)."""
    from ..core.errors import BackendUnavailableError
    from ..engine.backends import preferred, probe_backends

    probed: dict[bool, list] = {}

    def choose(info: ModelInfo) -> str:
        coreml = info.kind.is_coreml
        if coreml not in probed:
            probed[coreml] = probe_backends(coreml=coreml)
        found = preferred(probed[coreml], info.kind)
        if found is None:
            raise BackendUnavailableError(f"No backend here runs {info.name} ({info.kind.value}); "
                                          "`lcm-desktop doctor` says why.")
        return found.key

    return choose


class Hosting:
    """``lcm-desktop serve``'s own queue, engine thread and image writer (history rows marked ``api``)."""

    def __init__(self, paths: AppPaths | None = None, build: Callable[[EngineSpec], Any] = build_engine):
        from ..history import History
        from ..outputs import ImageWriter

        self.paths = paths or AppPaths.default()
        self.history = History(self.paths.data / "history.sqlite3")
        self.queue = JobQueue()
        writer = ImageWriter(self.history, starts=self.paths.starts)
        self.runner = EngineRunner(self.queue, build, writer, self.paths.output)

    @property
    def output_folder(self) -> Path:
        return self.paths.output

    def start(self) -> None:
        self.runner.start()

    def stop(self, timeout: float | None = 30) -> None:
        self.runner.stop(timeout)
        self.history.close()


class ApiServer:
    """uvicorn on a socket bound before it starts: connections wait in the backlog, so no start-up race."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 7860):
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError as exc:
            self._socket.close()
            from ..core.errors import OutputError

            raise OutputError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port.") \
                from exc
        self._socket.listen(128)
        self.host, self.port = host, self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        """In the foreground until Ctrl-C (uvicorn's signal handlers)."""
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._socket.close()

    def start(self) -> None:
        """On a thread (the app; tests)."""
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="api-server", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10) -> bool:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._socket.close()
        return self._thread is None or not self._thread.is_alive()
