"""Parity checks of a conversion.

1. Everywhere: the captured wrapper (Apple layout, chosen attention, fp32) against the eager
   diffusers/transformers module (diffusers layout, its own attention) on random inputs.  Both
   compute the same function in fp32, so they differ only by summation order: ~1e-6 relative.
   ``MAX_RELATIVE_ERROR`` = 1e-3 sits ~1000× above that noise and well below what a real
   mistake gives: even on the tiny random-weight test UNet, whose guidance embedding matters
   little, a dropped ``timestep_cond`` or a wrong ``timestep`` gives 5e-2–6e-2 (measured;
   full-size models react more), so it neither flakes nor lets a wrong graph through.  fp16
   rounding (unit roundoff 2^-11 ≈ 5e-4 per op, accumulating) is *not* part of this check: it
   only exists in Core ML, which check 3 measures.
2. Everywhere: the saved package's declared inputs/outputs against the manifest's.
3. Everywhere (unless ``--no-verify``): the saved package executed by the reference executor
   (``lcm_desktop.mlprogram``: the ML Program itself, op by op, fp16 rounded at every op boundary,
   palettized weights expanded exactly) against PyTorch's output, PSNR ≥ ``min_psnr_db(bits)``,
   recorded in the manifest as ``reference_vs_torch``.  This checks the very artifact we ship.
4. On a Mac: Core ML's prediction against PyTorch's, PSNR ≥ ``min_psnr_db(bits)`` too (35 dB at
   fp16, Apple's threshold in ml-stable-diffusion), recorded in the manifest.

Thresholds: fp16 packages need 35 dB (Apple's).  k-means palettized ones lose more by design;
measured with the reference executor on the built-in model, the tiny test models and the
random-weight SD1.5 UNet (docs/PERFORMANCE.md), PALETTIZED_MIN_PSNR_DB sits several dB below
the worst component measured at each bit width and far above a broken package (a swapped
weight channel or a wrong palette entry measures below 20 dB).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from convert.export import import_coremltools, read_package_io
from lcm_desktop.core.errors import ConversionError, ParityError
from lcm_desktop.core.manifest import ComponentSpec, ParityResult, TensorSpec
from lcm_desktop.core.parity import MIN_PSNR_DB, PALETTIZED_MIN_PSNR_DB, min_psnr_db, psnr  # noqa: F401 (re-exported)

MAX_RELATIVE_ERROR = 1e-3


def relative_error(test: torch.Tensor, reference: torch.Tensor) -> float:
    """‖test − reference‖₂ / ‖reference‖₂ (0 when both are zero)."""
    test, reference = test.detach().double(), reference.detach().double()
    denom = reference.norm().item()
    diff = (test - reference).norm().item()
    return diff / denom if denom > 0 else diff


def check_traced_vs_eager(component: str, output_names: Sequence[str], traced: Sequence[torch.Tensor],
                          eager: Sequence[torch.Tensor], threshold: float = MAX_RELATIVE_ERROR) -> list[ParityResult]:
    """Compare outputs pairwise; raise ParityError above ``threshold``, else return the results."""
    results = []
    for name, test, ref in zip(output_names, traced, eager, strict=True):
        if tuple(test.shape) != tuple(ref.shape):
            raise ParityError(
                f"{component}.{name}: the converted graph returns shape {tuple(test.shape)} but the original "
                f"returns {tuple(ref.shape)}; this architecture is not supported by the converter."
            )
        err = relative_error(test, ref)
        result = ParityResult("traced_vs_eager", name, "relative_error", err, threshold)
        if not result.passed:
            raise ParityError(
                f"{component}.{name} differs from the PyTorch original by {err:.3g} (relative, allowed {threshold:g}); "
                "the conversion is wrong for this model, please report it."
            )
        results.append(result)
    return results


def check_package_io(path: Path, spec: ComponentSpec) -> None:
    """The saved package must declare exactly the manifest's inputs and outputs (names, shapes, dtypes)."""
    inputs, outputs = read_package_io(path)
    for kind, declared, expected in (("inputs", inputs, spec.inputs), ("outputs", outputs, spec.outputs)):
        if list(declared) != list(expected):
            have = ", ".join(s.describe() for s in declared)
            want = ", ".join(s.describe() for s in expected)
            raise ConversionError(f"{path.name} declares {kind} [{have}] but the manifest says [{want}].")


def coreml_available() -> bool:
    return sys.platform == "darwin"


def check_coreml_vs_torch(component: str, package: Path, input_specs: Sequence[TensorSpec],
                          output_names: Sequence[str], inputs: Sequence[torch.Tensor],
                          reference: Sequence[torch.Tensor],
                          load: Callable[[Path], object] | None = None,
                          threshold: float = MIN_PSNR_DB) -> list[ParityResult]:
    """Core ML prediction vs PyTorch: PSNR ≥ ``threshold`` per output (macOS; ``load`` for tests)."""
    if load is None:
        ct = import_coremltools()
        load = lambda p: ct.models.MLModel(str(p), compute_units=ct.ComputeUnit.CPU_AND_NE)  # noqa: E731
    return _compare("coreml_vs_torch", component, load(package), input_specs, output_names, inputs, reference,
                    threshold, "Core ML output", "try --attention original, or no --palettize.")


def check_reference_vs_torch(component: str, package: Path, input_specs: Sequence[TensorSpec],
                             output_names: Sequence[str], inputs: Sequence[torch.Tensor],
                             reference: Sequence[torch.Tensor], threshold: float = MIN_PSNR_DB) -> list[ParityResult]:
    """The saved package run by the reference executor vs PyTorch: PSNR ≥ ``threshold`` per output (any OS)."""
    from lcm_desktop.mlprogram import Executor, load_program

    return _compare("reference_vs_torch", component, Executor(load_program(package)), input_specs, output_names,
                    inputs, reference, threshold, f"the saved {package.name}, run by the reference executor,",
                    "the package is wrong: convert again without --palettize, or with --attention original, "
                    "and report it if it persists.")


def _compare(check: str, component: str, model, input_specs: Sequence[TensorSpec], output_names: Sequence[str],
             inputs: Sequence[torch.Tensor], reference: Sequence[torch.Tensor], threshold: float,
             what: str, advice: str) -> list[ParityResult]:
    feed = {s.name: x.detach().numpy().astype(np.float32) for s, x in zip(input_specs, inputs, strict=True)}
    out = model.predict(feed)
    results = []
    for name, ref in zip(output_names, reference, strict=True):
        value = psnr(out[name], ref.detach().numpy())
        result = ParityResult(check, name, "psnr_db", value, threshold)
        if not result.passed:
            raise ParityError(
                f"{component}.{name}: {what} is {value:.1f} dB PSNR from PyTorch (needs ≥ {threshold:g} dB); {advice}"
            )
        results.append(result)
    return results
