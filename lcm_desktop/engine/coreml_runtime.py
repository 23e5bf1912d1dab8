"""The Mac-only part of the Core ML backend, kept small: compile a package, load a compiled model.

``CoreMLRuntime`` is the seam: ``CoreMLToolsRuntime`` is Core ML itself (coremltools, macOS only),
``coreml_reference.ReferenceRuntime`` runs the packages on any OS, and tests may inject their own.
Compiled models (``.mlmodelc``) are cached by package hash, so only a model's first load compiles.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import sys
from pathlib import Path
from typing import Protocol

import numpy as np

from ..core.atomic import publish_dir
from ..core.errors import BackendUnavailableError, ModelCorruptError
from ..core.manifest import ComponentSpec

log = logging.getLogger(__name__)


class Predictor(Protocol):
    """What ``coremltools.models.MLModel``/``CompiledMLModel`` offer: dict of arrays in, dict of arrays out."""

    def predict(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class CoreMLRuntime(Protocol):
    def compile(self, package: Path, destination: Path) -> None:
        """Compile ``package`` (.mlpackage) into the folder ``destination`` (.mlmodelc)."""

    def load(self, compiled: Path, compute_units: str) -> Predictor:
        """Load a compiled model for the given compute units."""


class CoreMLToolsRuntime:
    """The real runtime: coremltools on macOS (Core ML itself)."""

    def __init__(self) -> None:
        if sys.platform != "darwin":
            raise BackendUnavailableError(
                f"The Core ML backend needs macOS (Core ML does not exist on {sys.platform}); use the PyTorch backend "
                "(or --compute-units REFERENCE to check a converted model slowly on the reference executor)."
            )
        try:
            import coremltools
        except ImportError as exc:
            raise BackendUnavailableError(
                "The Core ML backend needs coremltools; install it with pip install 'lcm-desktop[coreml]'."
            ) from exc
        self.ct = coremltools

    def compile(self, package: Path, destination: Path) -> None:
        compiled = self.ct.utils.compile_model(str(package), str(destination))
        if Path(compiled) != destination:
            shutil.move(str(compiled), destination)

    def load(self, compiled: Path, compute_units: str) -> Predictor:
        return self.ct.models.CompiledMLModel(str(compiled), compute_units=self.ct.ComputeUnit[compute_units])


class CompiledModelCache:
    """``cache_dir/<package hash>/<Name>.mlmodelc``: compiled once, reused by every later load."""

    def __init__(self, cache_dir: Path, runtime: CoreMLRuntime):
        self.root = Path(cache_dir)
        self.runtime = runtime

    def compiled_path(self, folder: Path, spec: ComponentSpec) -> Path:
        package = folder / spec.file
        if package.suffix == ".mlmodelc":  # already compiled (Apple's Resources layout)
            return package
        key = spec.sha256[:32] if spec.sha256 else _stat_key(package)
        target = self.root / key / f"{spec.name}.mlmodelc"
        if target.exists():
            return target
        log.info("compiling %s (first load only)", package)
        try:  # the whole <hash> folder is published; one left without its .mlmodelc by a crash is replaced
            publish_dir(target.parent, lambda work: self.runtime.compile(package, work / target.name), replace=True)
        except BackendUnavailableError:
            raise
        except Exception as exc:  # Core ML raises its own types; any of them means "cannot compile"
            raise ModelCorruptError(
                f"Core ML could not compile {package.name} ({exc}); convert the model again."
            ) from exc
        return target


def _stat_key(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:32]
