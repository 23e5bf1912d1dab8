"""What the local API serves, without HTTP: the model it runs, the models and styles it lists, its jobs.

One engine, one queue: the API submits KEPT jobs (origin ``"api"``) to the same ``session.jobs.JobQueue`` the
app's window and Live use, so one generation runs at a time, requests are answered in order, and an API job is
saved with its history row like the app's own (marked ``api``).  ``lcm-desktop serve`` makes the queue and its
``EngineRunner`` (``start_runner``); the app hands in its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import InvalidRequestError, LcmError
from ..core.model_info import ModelInfo, describe_model
from ..core.request import GenerationRequest
from ..session.jobs import EngineSpec, Job, JobKind, JobQueue

ORIGIN = "api"
MAX_WAITING = 32  # API jobs queued at once: more is a 503 (each may hold a decoded picture)


class ServerBusyError(LcmError):
    """Too many API requests wait already (HTTP 503: try again later)."""
LISTED_KINDS = ("lcm", "lcm-lora", "coreml")  # models that make pictures alone (no bases, no tiny decoders)


@dataclass(frozen=True)
class ServedModel:
    """A model the API can run: its name (A1111's ``title`` and ``model_name``), folder and backend key."""

    name: str
    path: Path
    backend: str  # an engine.backends choice key
    info: ModelInfo = field(compare=False, repr=False)
    tiny_decoder: Path | None = None
    cache_dir: Path | None = None  # compiled Core ML models (the app's)

    @property
    def spec(self) -> EngineSpec:
        return EngineSpec(self.path, self.backend, self.tiny_decoder, self.cache_dir)


class ApiService:
    """Thread-safe.  ``models``: a function listing the models a client may switch to (called per request)."""

    def __init__(self, queue: JobQueue, model: ServedModel, *,
                 models: Callable[[], list[ServedModel]] | None = None,
                 styles: Callable[[], list] | None = None, style_path: Callable[[str], Path] | None = None,
                 output_folder: Path | None = None):
        self.queue = queue
        self._model = self._first = model
        self._models = models or (lambda: [])
        self._styles = styles or (lambda: [])
        self._style_path = style_path
        self._output_folder = output_folder
        self._lock = threading.Lock()

    # -- models -------------------------------------------------------------------------------------
    @property
    def model(self) -> ServedModel:
        with self._lock:
            return self._model

    def models(self) -> list[ServedModel]:
        """The model served first (``--model``, or the app's), then every other listed one (by name, once)."""
        found: dict[str, ServedModel] = {self._first.name: self._first}
        for model in self._models():
            found.setdefault(model.name, model)
        return list(found.values())

    def find_model(self, name: object, field: str = "sd_model_checkpoint") -> ServedModel:
        """A listed model by its title/name (A1111 titles may carry `` [hash]``); never a path a client names."""
        if isinstance(name, str):
            bare = name.split(" [", 1)[0].strip()
            for model in self.models():
                if name == model.name or bare == model.name:
                    return model
        names = ", ".join(m.name for m in self.models())
        raise InvalidRequestError(field, name, f"one of the models GET /sdapi/v1/sd-models lists ({names})")

    def select(self, name: object) -> ServedModel:
        """``sd_model_checkpoint``: later jobs run on this model (the runner loads it with the next job)."""
        model = self.find_model(name)
        with self._lock:
            self._model = model
        return model

    def serve(self, model: ServedModel) -> None:
        """The host's model changed (the app's selection): it is listed first and runs later requests."""
        with self._lock:
            self._model = self._first = model

    # -- styles -------------------------------------------------------------------------------------------
    def styles(self) -> list:
        return self._styles()

    def check_styles(self, request: GenerationRequest) -> None:
        """Every style the request names (``<lora:…>`` tags) is installed: else a 422 naming ``prompt``."""
        if self._style_path is None:
            return
        for lora in request.styles:
            try:
                self._style_path(lora.name)
            except LcmError as exc:
                raise InvalidRequestError("prompt", f"<lora:{lora.name}:…>", "naming installed styles (GET "
                                          "/sdapi/v1/loras lists them)") from exc

    # -- jobs ---------------------------------------------------------------------------------------------
    def submit(self, request: GenerationRequest, model: ServedModel | None = None) -> Job:
        waiting = sum(job.origin == ORIGIN for job in self.queue.queued)
        if waiting >= MAX_WAITING:
            raise ServerBusyError(f"{waiting} requests are waiting already; try again when one has finished.")
        model = model or self.model
        return self.queue.submit(JobKind.KEPT, request, model.spec, origin=ORIGIN, output_folder=self._output_folder)


    def interrupt(self) -> bool:
        """Cancel the running job between two steps if it is an API job (the app's own Generate and Live are
        the window's to stop); whether one was cancelled."""
        job = self.queue.running
        return job is not None and job.origin == ORIGIN and self.queue.cancel(job.id)


def served_model(name: str, path: Path, backend: Callable[[ModelInfo], str],
                 tiny_decoder: Path | None = None) -> ServedModel:
    """Describe ``path`` (one line when it is no model) and pick its backend with ``backend(info)``."""
    info = describe_model(path)
    return ServedModel(name, path, backend(info), info, tiny_decoder)


def installed_models(backend: Callable[[ModelInfo], str]) -> list[ServedModel]:
    """The usable installed models (``models.store``), each described; one that cannot be read is left out."""
    from ..models.resolve import resolve_model
    from ..models.store import ModelStore

    found = []
    for row in ModelStore().rows():
        if not row.usable or row.kind not in LISTED_KINDS:
            continue
        try:
            found.append(served_model(row.name, resolve_model(row.name), backend))
        except LcmError:
            continue
    return found
