"""Reductions, softmax and normalizations (iOS15 ``reduction.py``, ``activation.softmax``, ``normalization.py``).

Statistics are taken in float32 over the float32 copy of the input (numpy's pairwise sums), the
result rounded once at the op boundary, as a GPU kernel that accumulates in fp32 would give.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import axes_tuple, f32, ints, scalar


def _reduction(fn):
    def run(a: dict[str, Any]) -> np.ndarray:
        x = np.asarray(a["x"])
        axes = axes_tuple(ints(a, "axes"), x.ndim)
        return fn(x, axis=axes, keepdims=bool(scalar(a, "keep_dims", False)))

    return run


def _arg(fn):
    def run(a: dict[str, Any]) -> np.ndarray:
        x = np.asarray(a["x"])
        axis = int(scalar(a, "axis", -1)) % x.ndim
        out = fn(x, axis=axis)
        return np.expand_dims(out, axis) if scalar(a, "keep_dims", False) else out

    return run


def _log_sum_exp(x, axis, keepdims):
    x = f32(x)
    top = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


def softmax(a: dict[str, Any]) -> np.ndarray:
    x = f32(a["x"])
    axis = int(scalar(a, "axis", -1))
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _normalize(x: np.ndarray, axes: tuple[int, ...], epsilon: float) -> np.ndarray:
    mean = np.mean(x, axis=axes, keepdims=True)
    centred = x - mean
    variance = np.mean(np.square(centred), axis=axes, keepdims=True)
    return centred / np.sqrt(variance + np.float32(epsilon))


def layer_norm(a: dict[str, Any]) -> np.ndarray:
    """gamma·(x − E[x]) / √(Var[x] + ε) + beta over ``axes`` (default: all); gamma/beta shaped as x.shape[axes]."""
    x = f32(a["x"])
    axes = axes_tuple(ints(a, "axes"), x.ndim) or tuple(range(x.ndim))
    out = _normalize(x, axes, scalar(a, "epsilon", 1e-5))
    param_shape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    for key, op in (("gamma", np.multiply), ("beta", np.add)):
        if key in a:
            out = op(out, f32(a[key]).reshape(param_shape))
    return out


def _channel(a: dict[str, Any], key: str, rank: int) -> np.ndarray:
    return f32(a[key]).reshape(1, -1, *([1] * (rank - 2)))


def batch_norm(a: dict[str, Any]) -> np.ndarray:
    """gamma·(x − mean) / √(variance + ε) + beta, per channel (axis 1), with the given statistics."""
    x = f32(a["x"])
    out = (x - _channel(a, "mean", x.ndim)) / np.sqrt(
        _channel(a, "variance", x.ndim) + np.float32(scalar(a, "epsilon", 1e-5))
    )
    if "gamma" in a:
        out = out * _channel(a, "gamma", x.ndim)
    return out + _channel(a, "beta", x.ndim) if "beta" in a else out


def instance_norm(a: dict[str, Any]) -> np.ndarray:
    """Normalize each (n, c) over the spatial dimensions, then gamma/beta per channel."""
    x = f32(a["x"])
    out = _normalize(x, tuple(range(2, x.ndim)), scalar(a, "epsilon", 1e-5))
    if "gamma" in a:
        out = out * _channel(a, "gamma", x.ndim)
    return out + _channel(a, "beta", x.ndim) if "beta" in a else out


OPS = {
    "reduce_mean": _reduction(lambda x, axis, keepdims: np.mean(f32(x), axis=axis, keepdims=keepdims)),
    "reduce_sum": _reduction(np.sum),
    "reduce_prod": _reduction(np.prod),
    "reduce_max": _reduction(np.max),
    "reduce_min": _reduction(np.min),
    "reduce_sum_square": _reduction(lambda x, axis, keepdims: np.sum(np.square(f32(x)), axis=axis, keepdims=keepdims)),
    "reduce_l1_norm": _reduction(lambda x, axis, keepdims: np.sum(np.abs(f32(x)), axis=axis, keepdims=keepdims)),
    "reduce_l2_norm": _reduction(lambda x, axis, keepdims: np.sqrt(np.sum(np.square(f32(x)), axis=axis,
                                                                          keepdims=keepdims))),
    "reduce_log_sum_exp": _reduction(_log_sum_exp),
    "reduce_argmax": _arg(np.argmax),
    "reduce_argmin": _arg(np.argmin),
    "softmax": softmax,
    "layer_norm": layer_norm,
    "batch_norm": batch_norm,
    "instance_norm": instance_norm,
}
