"""Capture a wrapper's graph and convert it to an fp16 ML Program ``.mlpackage``.

UNet and VAE go through ``torch.export.export(...).run_decompositions({})`` (faster and lighter
than tracing for the full UNet: 61 s / 6.5 GB vs 82 s / 7.7 GB here); CLIP goes through
``torch.jit.trace``, because its exported graph keeps ``aten.alias`` nodes that coremltools 9
cannot convert.  Inputs are float32 with the wrapper's fixed shapes, outputs are named and
float32 (as Apple's are); compute precision is fp16.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convert.options import TARGETS
from lcm_desktop.core.errors import ConversionError
from lcm_desktop.core.manifest import TensorSpec

log = logging.getLogger(__name__)


def import_coremltools() -> Any:
    """coremltools, or a ConversionError saying how to install it."""
    try:
        import coremltools
    except ImportError as exc:
        raise ConversionError(
            "coremltools is not installed; install the converter's extras with pip install 'lcm-desktop[coreml]'."
        ) from exc
    return coremltools


def capture(wrapper: torch.nn.Module, example_inputs: tuple[torch.Tensor, ...], route: str) -> Any:
    """The wrapper's graph: ``route`` is ``"export"`` (torch.export) or ``"trace"`` (TorchScript)."""
    wrapper.eval()
    try:
        with torch.no_grad():
            if route == "export":
                return torch.export.export(wrapper, example_inputs).run_decompositions({})
            if route == "trace":
                return torch.jit.trace(wrapper, example_inputs, strict=False, check_trace=False)
    except Exception as exc:  # torch raises many unrelated types here; all mean "cannot capture"
        name = type(wrapper).__name__
        raise ConversionError(f"PyTorch could not capture {name} ({type(exc).__name__}: {exc}).") from exc
    raise ConversionError(f"capture route must be 'export' or 'trace', got {route!r}.")


def run_captured(graph: Any, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Run a captured graph (exported program or TorchScript module) and return its outputs as a tuple."""
    with torch.no_grad():
        out = graph.module()(*inputs) if hasattr(graph, "module") else graph(*inputs)
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def to_mlpackage(graph: Any, inputs: list[TensorSpec], output_names: tuple[str, ...], out_path: Path,
                 min_target: str = "macOS14", precision: str = "float16") -> Any:
    """ct.convert → ML Program (fp16 compute unless ``precision="float32"``), saved at ``out_path``;
    returns the MLModel (not loaded: Linux cannot)."""
    ct = import_coremltools()
    if min_target not in TARGETS:
        raise ConversionError(f"--min-target must be one of {', '.join(TARGETS)}, got {min_target!r}.")
    try:
        model = ct.convert(
            graph,
            convert_to="mlprogram",
            inputs=[ct.TensorType(name=s.name, shape=s.shape, dtype=np.float32) for s in inputs],
            outputs=[ct.TensorType(name=name, dtype=np.float32) for name in output_names],
            compute_precision=ct.precision.FLOAT32 if precision == "float32" else ct.precision.FLOAT16,
            minimum_deployment_target=getattr(ct.target, min_target),
            skip_model_load=True,
        )
        model.save(str(out_path))
    except (RuntimeError, ValueError, TypeError, NotImplementedError, KeyError, AttributeError) as exc:
        raise ConversionError(f"coremltools could not convert {out_path.stem} ({type(exc).__name__}: {exc}).") from exc
    return model


_DTYPE_NAMES = {65568: "float32", 65552: "float16", 131104: "int32"}


def read_package_io(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The inputs and outputs a saved ``.mlpackage`` declares, as TensorSpecs."""
    ct = import_coremltools()
    try:
        spec = ct.utils.load_spec(str(path))
    except Exception as exc:  # protobuf/IO errors of many kinds: all mean "unreadable package"
        raise ConversionError(f"{path} cannot be read back ({type(exc).__name__}: {exc}).") from exc

    def specs(features) -> list[TensorSpec]:
        out = []
        for f in features:
            array = f.type.multiArrayType
            dtype = _DTYPE_NAMES.get(array.dataType, f"unknown({array.dataType})")
            out.append(TensorSpec(f.name, tuple(array.shape), dtype))
        return out

    return specs(spec.description.input), specs(spec.description.output)
