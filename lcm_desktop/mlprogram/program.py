"""An ML Program's ``main`` function as plain data, and the dtype rules the executor applies.

``Program`` is what ``loader.load_program`` makes of a package and all the executor needs:
the function's inputs and outputs, its constants (numpy arrays, scalars, strings) and its ops in
order.  Each op input is a variable name, or a tuple of names (``concat``'s ``values``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# MIL dtype names (coremltools' builtin_to_string) → numpy storage dtypes.  fp16 values are *stored* as
# float32 holding fp16-representable numbers: numpy's float16 arithmetic is slow and is not what Core ML's
# GPU/Neural Engine do either (they accumulate in wider registers and round results to fp16).
NUMPY_DTYPES: dict[str, Any] = {
    "fp16": np.float32, "fp32": np.float32, "fp64": np.float64,
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
    "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "bool": np.bool_,
}
# What a caller receives for a program output of each dtype.
OUTPUT_DTYPES: dict[str, Any] = {**NUMPY_DTYPES, "fp16": np.float16}


@dataclass(frozen=True)
class TensorType:
    """A function input or an op output: its name, MIL dtype name and (for inputs) fixed shape."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Op:
    type: str
    name: str
    inputs: dict[str, str | tuple[str, ...]]
    outputs: tuple[TensorType, ...]


@dataclass(frozen=True)
class Program:
    """The ``main`` function of one package (``source``: the package path, for messages)."""

    source: str
    inputs: tuple[TensorType, ...]
    outputs: tuple[str, ...]
    constants: dict[str, Any] = field(repr=False)
    ops: tuple[Op, ...] = field(repr=False)
    output_types: dict[str, str] = field(default_factory=dict)

    def op_types(self) -> dict[str, int]:
        """Op type → count (constants not included)."""
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.type] = counts.get(op.type, 0) + 1
        return counts


def conform(value: Any, dtype: str) -> Any:
    """``value`` as the executor stores a variable of MIL dtype ``dtype``.

    fp16: computed in float32, rounded to the nearest fp16 (overflow gives ±inf, as on the
    device), kept in float32.  Integers and bools: numpy's ``astype`` (C truncation for floats,
    as coremltools' own ``cast`` value inference does).  Strings and unknown dtypes pass through.
    """
    if dtype == "fp16":
        with np.errstate(over="ignore"):
            return np.asarray(value, dtype=np.float32).astype(np.float16).astype(np.float32)
    target = NUMPY_DTYPES.get(dtype)
    if target is None or isinstance(value, str):
        return value
    return np.asarray(value).astype(target, copy=False)
