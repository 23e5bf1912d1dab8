"""The Core ML backend on the reference executor (``compute_units="REFERENCE"``): any OS, for debugging.

A ``CoreMLRuntime`` whose models are ``lcm_desktop.mlprogram.Executor``s: the converted
``.mlpackage``s run op by op in numpy, fp16 rounded at every op boundary, through the same
manifest checks, components, sampler and Protocols as Core ML on a Mac.  It is slow (a full
SD1.5 UNet call takes about a minute on two cores) and exists to check converted models where
Core ML does not; the app does not offer it, the CLI and ``doctor`` do.  Nothing is compiled or
cached: ``load`` reads the package itself.
"""

from __future__ import annotations

from pathlib import Path

from ..mlprogram import Executor, load_program

REFERENCE = "REFERENCE"


class ReferenceRuntime:
    def compile(self, package: Path, destination: Path) -> None:
        """Never needed: the executor reads ``.mlpackage``s as they are."""
        raise NotImplementedError("the reference executor runs packages without compiling them")

    def load(self, compiled: Path, compute_units: str) -> Executor:
        """``compiled`` is the ``.mlpackage`` itself here; ``compute_units`` is always REFERENCE."""
        return Executor(load_program(compiled))
