"""Read the ML Program of an ``.mlpackage`` into a plain ``Program`` (coremltools, imported here only).

coremltools' milproto loader parses the package's ``model.mlmodel`` and its weight file on any OS
(REFERENCE.md, Core ML section); everything after this module is numpy.  Errors from coremltools
or protobuf become one ``ModelCorruptError``/``ModelFormatError`` sentence naming the package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import BackendUnavailableError, ModelCorruptError, ModelFormatError
from ..core.model_files import check_confined_tree
from .program import MAX_TENSOR_BYTES, Op, Program, TensorType, declared_bytes

WEIGHTS_DIR = Path("Data", "com.apple.CoreML", "weights")


def load_program(package: Path | str, function: str = "main") -> Program:
    """The ``function`` of the ML Program in ``package`` (a ``.mlpackage`` folder)."""
    package = Path(package)
    if package.suffix != ".mlpackage" or not package.is_dir():
        raise ModelFormatError(
            f"{package} is not an .mlpackage folder; the reference executor reads packages, "
            "not compiled .mlmodelc models."
        )
    check_confined_tree(package, root=os.path.realpath(package))  # no link out of the package, no FIFO
    ct, milproto_load = _coremltools()
    try:
        spec = ct.utils.load_spec(str(package))
    except Exception as exc:  # protobuf and IO errors of many kinds: all mean "unreadable package"
        raise ModelCorruptError(
            f"{package.name} cannot be read ({type(exc).__name__}: {exc}); convert it again."
        ) from exc
    if spec.WhichOneof("Type") != "mlProgram":
        raise ModelFormatError(f"{package.name} is a {spec.WhichOneof('Type')} model, not an ML Program; "
                               "the reference executor runs ML Programs only.")
    try:
        program = milproto_load(spec, spec.specificationVersion, file_weights_dir=str(package / WEIGHTS_DIR))
        mil_function = program.functions[function]
    except KeyError as exc:
        raise ModelFormatError(f"{package.name} has no '{function}' function.") from exc
    except Exception as exc:  # a truncated weight file, a bad blob offset, an unknown proto field
        raise ModelCorruptError(
            f"{package.name} cannot be read ({type(exc).__name__}: {exc}); convert it again."
        ) from exc
    return _to_program(mil_function, package)


def _coremltools() -> tuple[Any, Any]:
    try:
        import coremltools
        from coremltools.converters.mil.frontend.milproto.load import load
    except ImportError as exc:
        raise BackendUnavailableError(
            "The Core ML reference executor needs coremltools to read packages; install it with "
            "pip install 'lcm-desktop[coreml]'."
        ) from exc
    return coremltools, load


def _dtype(var) -> str:
    from coremltools.converters.mil.mil import types

    return types.builtin_to_string(var.dtype)


def _to_program(mil_function, package: Path) -> Program:
    constants: dict[str, Any] = {}
    ops: list[Op] = []
    for mil_op in mil_function.operations:
        if mil_op.op_type == "const":
            out = mil_op.outputs[0]
            constants[out.name] = _constant(out.val)
            continue
        inputs = {}
        for key, value in mil_op.inputs.items():
            inputs[key] = tuple(v.name for v in value) if isinstance(value, (list, tuple)) else value.name
        outputs = tuple(TensorType(v.name, _dtype(v), _shape(v)) for v in mil_op.outputs)
        for tensor in outputs:
            _check_size(tensor, package)
        kind = mil_op.op_type if not mil_op.blocks else f"{mil_op.op_type} (with nested blocks)"
        ops.append(Op(kind, mil_op.name, inputs, outputs))
    inputs = tuple(TensorType(name, _dtype(var), tuple(int(d) for d in var.shape))
                   for name, var in mil_function.inputs.items())
    outputs = tuple(var.name for var in mil_function.outputs)
    output_types = {var.name: _dtype(var) for var in mil_function.outputs}
    return Program(str(package), inputs, outputs, constants, tuple(ops), output_types)


def _shape(var) -> tuple[int, ...] | None:
    """A variable's declared shape, if every dimension is a number (symbolic ones are left undeclared)."""
    try:
        shape = tuple(var.shape)
    except (AttributeError, TypeError):
        return None
    return shape if all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape) else None


def _check_size(tensor: TensorType, package: Path) -> None:
    size = declared_bytes(tensor)
    if size > MAX_TENSOR_BYTES:
        raise ModelFormatError(
            f"{package.name} declares a tensor of {size / 2**30:.1f} GiB ({tensor.name[:60]!r}, shape "
            f"{tensor.shape}); the reference executor refuses tensors over {MAX_TENSOR_BYTES // 2**30} GiB — "
            "convert the model again."
        )


def _constant(value: Any) -> Any:
    if isinstance(value, (str, bytes)):
        return value
    array = np.asarray(value)
    return array.astype(np.float32) if array.dtype == np.float16 else array
