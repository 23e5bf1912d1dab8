"""Layout ops: reshape, transpose, slicing, joining, gathering, padding and nearest upsampling.

From iOS15/iOS17 ``tensor_transformation.py``, ``tensor_operation.py``, ``scatter_gather.py`` and
``image_resizing.py``.  They move values without arithmetic, so they are exact in any dtype.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .common import bools, ints, scalar


def reshape(a: dict[str, Any]) -> np.ndarray:
    """``-1`` is inferred; each ``0`` copies the dimension of x at the same place counted from the right
    (or 1 beyond x's rank), the iOS17 rule, which is iOS15's whenever both ranks are equal."""
    x = np.asarray(a["x"])
    shape = ints(a, "shape")
    offset = len(shape) - x.ndim
    shape = [(x.shape[i - offset] if 0 <= i - offset < x.ndim else 1) if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


def slice_by_index(a: dict[str, Any]) -> np.ndarray:
    x = np.asarray(a["x"])
    rank = x.ndim
    begin, end = ints(a, "begin"), ints(a, "end")
    stride = ints(a, "stride", [1] * rank)
    begin_mask, end_mask, squeeze = (
        bools(a, "begin_mask", rank),
        bools(a, "end_mask", rank),
        bools(a, "squeeze_mask", rank),
    )
    index: list[Any] = []
    for i in range(rank):
        if squeeze[i]:
            index.append(begin[i])
        else:
            index.append(slice(None if begin_mask[i] else begin[i], None if end_mask[i] else end[i], stride[i]))
    return x[tuple(index)]


def slice_by_size(a: dict[str, Any]) -> np.ndarray:
    x = np.asarray(a["x"])
    begin, size = ints(a, "begin"), ints(a, "size")
    return x[tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size))]


def split(a: dict[str, Any]) -> tuple[np.ndarray, ...]:
    x = np.asarray(a["x"])
    axis = int(scalar(a, "axis")) % x.ndim
    sizes = ints(a, "split_sizes")
    if sizes is None:
        count = int(scalar(a, "num_splits"))
        if x.shape[axis] % count:
            raise ValueError(f"cannot split {x.shape[axis]} evenly into {count}")
        sizes = [x.shape[axis] // count] * count
    if sum(sizes) != x.shape[axis]:
        raise ValueError(f"split sizes {sizes} do not add up to {x.shape[axis]}")
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


def concat(a: dict[str, Any]) -> np.ndarray:
    values = [np.asarray(v) for v in a["values"]]
    axis = int(scalar(a, "axis")) % values[0].ndim
    if not scalar(a, "interleave", False):
        return np.concatenate(values, axis=axis)
    stacked = np.stack(values, axis=axis + 1)  # out[i·n + k] = values[k][i]
    return stacked.reshape(*values[0].shape[:axis], -1, *values[0].shape[axis + 1:])


def gather(a: dict[str, Any]) -> np.ndarray:
    """x[..., indices, ...] along ``axis`` (negative indices count from the end); ``batch_dims`` leading
    dimensions of x and indices are matched pairwise."""
    x, indices = np.asarray(a["x"]), np.asarray(a["indices"]).astype(np.int64)
    axis = int(scalar(a, "axis", 0)) % x.ndim
    batch = int(scalar(a, "batch_dims", 0))
    if batch == 0:
        return np.take(x, indices, axis=axis, mode="raise")
    lead = x.shape[:batch]
    xs, idx = x.reshape(-1, *x.shape[batch:]), indices.reshape(-1, *indices.shape[batch:])
    parts = [np.take(xs[i], idx[i], axis=axis - batch, mode="raise") for i in range(xs.shape[0])]
    return np.stack(parts).reshape(*lead, *parts[0].shape)


def gather_nd(a: dict[str, Any]) -> np.ndarray:
    """output[i…] = x[indices[i…, 0], …, indices[i…, K−1], …] (``batch_dims`` 0)."""
    x, indices = np.asarray(a["x"]), np.asarray(a["indices"]).astype(np.int64)
    if int(scalar(a, "batch_dims", 0)):
        raise NotImplementedError("gather_nd with batch_dims > 0")
    return x[tuple(np.moveaxis(indices, -1, 0))]


def gather_along_axis(a: dict[str, Any]) -> np.ndarray:
    x = np.asarray(a["x"])
    return np.take_along_axis(x, np.asarray(a["indices"]).astype(np.int64), axis=int(scalar(a, "axis", 0)))


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


def pad(a: dict[str, Any]) -> np.ndarray:
    """``pad[2i], pad[2i+1]`` before/after each of the last len(pad)/2 dimensions; constant, reflect or replicate."""
    x = np.asarray(a["x"])
    amounts = ints(a, "pad")
    count = len(amounts) // 2
    widths = [(0, 0)] * (x.ndim - count) + [(amounts[2 * i], amounts[2 * i + 1]) for i in range(count)]
    mode = scalar(a, "mode", "constant")
    if mode not in _PAD_MODES:
        raise ValueError(f"pad mode must be constant, reflect or replicate, got {mode!r}")
    if mode == "constant":
        return np.pad(x, widths, constant_values=scalar(a, "constant_val", 0.0))
    return np.pad(x, widths, mode=_PAD_MODES[mode])


def upsample_nearest_neighbor(a: dict[str, Any]) -> np.ndarray:
    """Output size floor(H·s); output row i reads input row floor(i / s) (integer or fractional s)."""
    x = np.asarray(a["x"])
    out = x
    for axis, key in ((-2, "scale_factor_height"), (-1, "scale_factor_width")):
        s = float(scalar(a, key, 1))
        size = x.shape[axis]
        rows = np.minimum(np.floor(np.arange(math.floor(size * s)) / s).astype(np.int64), size - 1)
        out = np.take(out, rows, axis=axis)
    return out


def squeeze(a: dict[str, Any]) -> np.ndarray:
    x = np.asarray(a["x"])
    axes = ints(a, "axes")
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(i % x.ndim for i in axes if x.shape[i] == 1))


OPS = {
    "reshape": reshape,
    "transpose": lambda a: np.transpose(np.asarray(a["x"]), ints(a, "perm")),
    "expand_dims": lambda a: np.expand_dims(np.asarray(a["x"]), tuple(ints(a, "axes"))),
    "squeeze": squeeze,
    "slice_by_index": slice_by_index,
    "slice_by_size": slice_by_size,
    "split": split,
    "concat": concat,
    "stack": lambda a: np.stack([np.asarray(v) for v in a["values"]], axis=int(scalar(a, "axis"))),
    "tile": lambda a: np.tile(np.asarray(a["x"]), ints(a, "reps")),
    "gather": gather,
    "gather_nd": gather_nd,
    "gather_along_axis": gather_along_axis,
    "pad": pad,
    "upsample_nearest_neighbor": upsample_nearest_neighbor,
}
