"""Compressed weights (iOS16 ``constexpr_ops.py``, iOS18 ``compression.py``), expanded exactly, once.

The expansions only look values up and apply the stored scales, so they give the very numbers
Core ML decompresses to; the interpreter stores them as float32 copies of the fp16 values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import f32, ints, scalar


def unpack_indices(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """``count`` ``bits``-bit indices packed LSB first, byte after byte (the iOS16 layout).

    Every width a table can have (1, 2, 4, 6, 8 bits) divides 24, so each 3 bytes, read as one
    little-endian 24-bit number, hold 24 / bits whole indices: a few passes over uint32 arrays.
    """
    data = np.asarray(packed, dtype=np.uint8).reshape(-1)
    if 24 % bits or data.size * 8 < bits * count:
        raise ValueError(f"{data.size} bytes do not hold {count} indices of {bits} bits")
    data = np.concatenate([data, np.zeros(-data.size % 3, np.uint8)]).astype(np.uint32).reshape(-1, 3)
    words = data[:, 0] | (data[:, 1] << 8) | (data[:, 2] << 16)
    shifts = np.arange(0, 24, bits, dtype=np.uint32)
    return ((words[:, None] >> shifts) & np.uint32(2**bits - 1)).reshape(-1)[:count]


def lut_to_dense(a: dict[str, Any]) -> np.ndarray:
    lut = np.asarray(a["lut"])
    if "shape" in a:  # iOS16: one table, indices packed in bytes
        shape = ints(a, "shape")
        bits = int(np.log2(lut.size))
        if 2**bits != lut.size:
            raise ValueError(f"a lookup table of {lut.size} entries is not a power of two")
        return lut[unpack_indices(a["indices"], bits, int(np.prod(shape)))].reshape(shape)
    return _grouped_lut(np.asarray(a["indices"]).astype(np.int64), lut, scalar(a, "vector_axis"))


def _grouped_lut(indices: np.ndarray, lut: np.ndarray, vector_axis: Any) -> np.ndarray:
    """iOS18: lut[g_0, …, g_{K-1}, index, 0] where g_i = position_i // (shape_i / lut.shape[i])."""
    rank = indices.ndim
    if lut.ndim != rank + 2:
        raise ValueError(f"a lookup table of rank {lut.ndim} does not fit indices of rank {rank}")
    if lut.shape[-1] != 1:
        raise NotImplementedError(f"vector palettization (vector size {lut.shape[-1]}, axis {vector_axis})")
    groups = []
    for axis in range(rank):
        block = indices.shape[axis] // lut.shape[axis]
        position = np.arange(indices.shape[axis]) // block
        groups.append(position.reshape([-1 if i == axis else 1 for i in range(rank)]))
    return lut[(*groups, indices, 0)]


def affine_dequantize(a: dict[str, Any]) -> np.ndarray:
    """scale · (quantized_data − zero_point), scale and zero point per tensor or along ``axis``."""
    data = np.asarray(a["quantized_data"]).astype(np.float32)
    axis = int(scalar(a, "axis", 0)) % data.ndim
    shape = [-1 if i == axis else 1 for i in range(data.ndim)]
    scale, zero = f32(a["scale"]), f32(a["zero_point"])
    scale = scale.reshape(shape) if scale.size > 1 else scale
    zero = zero.reshape(shape) if zero.size > 1 else zero
    return scale * (data - zero)


def blockwise_shift_scale(a: dict[str, Any]) -> np.ndarray:
    """scale · (data − offset), scale and offset of data's rank, each entry covering a block of data."""
    data = np.asarray(a["data"]).astype(np.float32)

    def spread(t: np.ndarray) -> np.ndarray:
        for axis in range(data.ndim):
            t = np.repeat(t, data.shape[axis] // t.shape[axis], axis=axis)
        return t

    shifted = data - spread(f32(a["offset"])) if "offset" in a else data
    return spread(f32(a["scale"])) * shifted


OPS = {
    "constexpr_lut_to_dense": lut_to_dense,
    "constexpr_affine_dequantize": affine_dequantize,
    "constexpr_blockwise_shift_scale": blockwise_shift_scale,
}
