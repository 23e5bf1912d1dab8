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
# Memory the reference executor may use for one package (refused at load, before anything is allocated:
# a 24 KB package can declare a 24 GiB tensor): any one declared tensor, and the weights plus the most
# tensors alive at once.  SDXL's UNet (10.4 GB of weights in float32 plus its activations) fits.
MAX_TENSOR_BYTES = 4 * 2**30
MEMORY_BUDGET_BYTES = 16 * 2**30

# What a caller receives for a program output of each dtype.
OUTPUT_DTYPES: dict[str, Any] = {**NUMPY_DTYPES, "fp16": np.float16}


@dataclass(frozen=True)
class TensorType:
    """A function input or an op output: its name, MIL dtype name and fixed shape (None where not declared)."""

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


def declared_bytes(tensor: TensorType) -> int:
    """Bytes the executor stores for ``tensor`` (fp16 is kept in float32); 0 when its shape is not declared."""
    if tensor.shape is None:
        return 0
    count = 1
    for dim in tensor.shape:
        count *= dim
    return count * np.dtype(NUMPY_DTYPES.get(tensor.dtype, np.float32)).itemsize


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
