"""Which backends exist, answered once: the choices, which of them this machine can run and why not.

    for status in probe_backends():                  # imports torch (and coremltools): call off the GUI thread
        print(status.choice.label, status.available, status.why)
    engine = Engine(choice("coreml-ne").loader(folder))

The app's backend menu, its engine thread, ``doctor`` and the CLI all read this list; nothing
parses a label.  Importing this module is cheap (no torch): the window builds its menu from
``CHOICES`` before the probe has run.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ..core.errors import InvalidRequestError
from ..core.model_info import ModelKind
from .loaders import CoreMLLoader, Loader, TorchLoader


class BackendKind(StrEnum):
    TORCH = "torch"
    COREML = "coreml"

    def runs(self, kind: ModelKind) -> bool:
        """Whether this backend runs models of ``kind`` (PyTorch: diffusers folders; Core ML: converted ones)."""
        return kind.is_coreml == (self is BackendKind.COREML)


@dataclass(frozen=True)
class BackendChoice:
    key: str  # stable id, saved in the settings
    label: str
    kind: BackendKind
    device: str | None = None  # PyTorch: cpu, cuda, mps
    compute_units: str | None = None  # Core ML: CPU_AND_NE, CPU_AND_GPU, CPU_ONLY
    in_app: bool = True  # offered in the app's backend menu (doctor lists every choice)
    debugging: bool = False  # a tool for checking converted packages, not for making images (never timed)

    def loader(self, folder: Path, *, tiny_decoder: Path | None = None, cache_dir: Path | None = None,
               dtype: str | None = None) -> Loader:
        if self.kind is BackendKind.COREML:
            return CoreMLLoader(Path(folder), compute_units=self.compute_units or "ALL", cache_dir=cache_dir)
        return TorchLoader(Path(folder), device=self.device, dtype=dtype, tiny_decoder=tiny_decoder)


@dataclass(frozen=True)
class BackendStatus:
    choice: BackendChoice
    available: bool
    why: str = ""  # what is missing, when not available
    detail: str = ""  # e.g. the CUDA device's name


CHOICES = (
    BackendChoice("cpu", "PyTorch · CPU", BackendKind.TORCH, device="cpu"),
    BackendChoice("cuda", "PyTorch · CUDA", BackendKind.TORCH, device="cuda"),
    BackendChoice("mps", "PyTorch · MPS (Apple GPU)", BackendKind.TORCH, device="mps"),
    BackendChoice("coreml-ne", "Core ML · Neural Engine", BackendKind.COREML, compute_units="CPU_AND_NE"),
    BackendChoice("coreml-gpu", "Core ML · GPU", BackendKind.COREML, compute_units="CPU_AND_GPU"),
    BackendChoice("coreml-cpu", "Core ML · CPU", BackendKind.COREML, compute_units="CPU_ONLY", in_app=False),
    # The converted packages run op by op in numpy on any OS (lcm_desktop/mlprogram): slow, for checking them.
    BackendChoice("coreml-reference", "Core ML · reference executor (REFERENCE)", BackendKind.COREML,
                  compute_units="REFERENCE", in_app=False, debugging=True),
)
TORCH_PREFERENCE = ("mps", "cuda", "cpu")
COREML_PREFERENCE = ("coreml-ne", "coreml-gpu", "coreml-cpu")


def choice(key: str) -> BackendChoice:
    found = next((c for c in CHOICES if c.key == key), None)
    if found is None:
        raise InvalidRequestError("backend", key, f"one of {', '.join(c.key for c in CHOICES)}")
    return found


def preferred(statuses: list[BackendStatus], kind: ModelKind, current: str | None = None) -> BackendChoice | None:
    """``current`` if it runs here and fits a model of ``kind``, else the best available that does."""
    runnable = {s.choice.key: s.choice for s in statuses if s.available and s.choice.kind.runs(kind)}
    if current in runnable:
        return runnable[current]
    order = COREML_PREFERENCE if kind.is_coreml else TORCH_PREFERENCE
    return next((runnable[k] for k in order if k in runnable), None)


def probe_backends(*, coreml: bool = True) -> list[BackendStatus]:
    """Every choice with whether this machine runs it (imports torch and coremltools: not on the GUI thread).
    ``coreml=False``: the PyTorch choices only (importing coremltools alone takes seconds)."""
    return _torch_statuses() + (_coreml_statuses() if coreml else [])


def _torch_statuses() -> list[BackendStatus]:
    cpu, cuda, mps = (choice(k) for k in ("cpu", "cuda", "mps"))
    try:
        import torch
    except ImportError:
        why = "torch is not installed: run `make venv`"
        return [BackendStatus(c, False, why) for c in (cpu, cuda, mps)]
    found = [BackendStatus(cpu, True)]
    if torch.cuda.is_available():
        found.append(BackendStatus(cuda, True, detail=torch.cuda.get_device_name(0)))
    elif torch.version.cuda is None:
        found.append(BackendStatus(cuda, False, "this torch build has no CUDA (a CPU build)"))
    else:
        found.append(BackendStatus(cuda, False, "no NVIDIA GPU/driver found"))
    if torch.backends.mps.is_available():
        found.append(BackendStatus(mps, True))
    elif sys.platform != "darwin":
        found.append(BackendStatus(mps, False, "MPS exists only on macOS"))
    else:
        found.append(
            BackendStatus(mps, False, "MPS not available: needs Apple Silicon, macOS 12.3+ and an arm64 Python")
        )
    return found


def _coreml_statuses() -> list[BackendStatus]:
    missing = ""
    try:
        import coremltools  # noqa: F401
    except ImportError:
        missing = "coremltools is not installed: pip install 'lcm-desktop[coreml]'"
    except Exception as exc:  # a broken install fails in many ways; the menu must still say why
        missing = f"coremltools cannot be imported ({type(exc).__name__}: {exc})"[:200]
    found = []
    for c in (c for c in CHOICES if c.kind is BackendKind.COREML):
        if missing:
            found.append(BackendStatus(c, False, missing))
        elif c.compute_units == "REFERENCE":
            found.append(BackendStatus(c, True))  # coremltools reads the packages; numpy runs them, on any OS
        elif sys.platform != "darwin":
            found.append(BackendStatus(c, False, "Core ML runs models only on macOS (conversion works here)"))
        elif c.compute_units == "CPU_AND_NE" and platform.machine() != "arm64":
            found.append(BackendStatus(c, False, "the Neural Engine needs Apple Silicon"))
        else:
            found.append(BackendStatus(c, True))
    return found


def load_engine(model: Path, backend: str = "cpu", *, tiny_decoder: Path | None = None,
                cache_dir: Path | None = None, styles=None):
    """A loaded ``Engine`` for ``model`` on the backend choice ``backend`` (the app's and the API's engine
    thread build theirs here); ``styles``: the style store's name → file resolver."""
    from .engine import Engine

    loader = choice(backend).loader(model, tiny_decoder=tiny_decoder, cache_dir=cache_dir)
    engine = Engine(loader, styles=styles)
    engine.load()
    return engine
