"""Products: ``linear``, ``matmul``, ``einsum`` and ``conv`` (iOS15 ``linear.py``/``conv.py``), all on BLAS matmul.

Convolution is im2col: a strided window view of the padded input (no copy), made contiguous
once per group and multiplied by the flattened kernel; 1×1 convolutions (split_einsum's linear
layers) are a plain matmul.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .common import f32, ints, scalar


def linear(a: dict[str, Any]) -> np.ndarray:
    out = np.matmul(f32(a["x"]), f32(a["weight"]).T)
    return out + f32(a["bias"]) if "bias" in a else out


def matmul(a: dict[str, Any]) -> np.ndarray:
    x, y = np.asarray(a["x"]), np.asarray(a["y"])
    if scalar(a, "transpose_x", False) and x.ndim > 1:
        x = np.swapaxes(x, -1, -2)
    if scalar(a, "transpose_y", False) and y.ndim > 1:
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


def einsum(a: dict[str, Any]) -> np.ndarray:
    """Two-operand einsum without repeated letters in one operand, as a batched matmul.

    Letters in both operands and the output are batch dimensions (size-1 ones broadcast, as the
    MIL definition allows for B and H); letters in both operands only are summed over.
    """
    equation = scalar(a, "equation").replace(" ", "")
    x, y = (f32(v) for v in a["values"])
    (lhs, rhs), out = equation.split("->")[0].split(","), equation.split("->")[1]
    if len(set(lhs)) != len(lhs) or len(set(rhs)) != len(rhs) or len(lhs) != x.ndim or len(rhs) != y.ndim:
        raise ValueError(f"einsum equation {equation!r} does not fit inputs of shapes {x.shape} and {y.shape}")
    batch = [c for c in out if c in lhs and c in rhs]
    summed = [c for c in lhs if c in rhs and c not in out]
    left = [c for c in lhs if c not in rhs]
    right = [c for c in rhs if c not in lhs]
    size = {c: max(x.shape[lhs.index(c)] if c in lhs else 1, y.shape[rhs.index(c)] if c in rhs else 1)
            for c in lhs + rhs}

    def arrange(t: np.ndarray, letters: str, rows: list[str], cols: list[str]) -> np.ndarray:
        t = np.transpose(t, [letters.index(c) for c in batch + rows + cols])
        t = np.broadcast_to(t, [size[c] for c in batch] + list(t.shape[len(batch):]))
        return t.reshape([math.prod(size[c] for c in batch), math.prod(size[c] for c in rows),
                          math.prod(size[c] for c in cols)])

    product = np.matmul(arrange(x, lhs, left, summed), arrange(y, rhs, summed, right))
    product = product.reshape([size[c] for c in batch + left + right])
    return np.transpose(product, [(batch + left + right).index(c) for c in out])


def conv_padding(pad_type: str, pad: list[int] | None, kernel: tuple[int, ...], dilations: list[int],
                 strides: list[int], spatial: tuple[int, ...]) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dimension for ``pad_type`` valid / custom / same / same_lower."""
    if pad_type == "valid":
        return [(0, 0)] * len(kernel)
    if pad_type == "custom":
        pad = pad or [0] * (2 * len(kernel))
        return [(pad[2 * i], pad[2 * i + 1]) for i in range(len(kernel))]
    if pad_type not in ("same", "same_lower"):
        raise ValueError(f"pad_type must be valid, custom, same or same_lower, got {pad_type!r}")
    result = []
    for k, d, s, n in zip(kernel, dilations, strides, spatial):
        total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
        small, big = total // 2, total - total // 2
        result.append((big, small) if pad_type == "same_lower" else (small, big))
    return result


def conv(a: dict[str, Any]) -> np.ndarray:
    x, weight = f32(a["x"]), f32(a["weight"])
    rank = x.ndim - 2
    kernel = tuple(weight.shape[2:])
    strides = ints(a, "strides", [1] * rank)
    dilations = ints(a, "dilations", [1] * rank)
    groups = int(scalar(a, "groups", 1))
    padding = conv_padding(scalar(a, "pad_type", "valid"), ints(a, "pad"), kernel, dilations, strides, x.shape[2:])
    if any(p for pair in padding for p in pair):
        x = np.pad(x, [(0, 0), (0, 0), *padding])
    n, channels = x.shape[:2]
    out_channels, group_in = weight.shape[:2]
    group_out = out_channels // groups
    if channels != group_in * groups or out_channels % groups:
        raise ValueError(
            f"conv weight {weight.shape} with {groups} groups does not fit an input of {channels} channels"
        )
    if groups == 1 and all(k == 1 for k in kernel) and all(s == 1 for s in strides):
        out = np.matmul(weight.reshape(out_channels, channels), x.reshape(n, channels, -1)).reshape(
            n, out_channels, *x.shape[2:]
        )
        return out + f32(a["bias"]).reshape(1, -1, *([1] * rank)) if "bias" in a else out
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    windows = sliding_window_view(x, span, axis=tuple(range(2, 2 + rank)))  # (N, C, *out_full, *span)
    windows = windows[(slice(None), slice(None), *(slice(None, None, s) for s in strides),
                       *(slice(None, None, d) for d in dilations))]
    out_shape = windows.shape[2:2 + rank]
    outputs = []
    for g in range(groups):
        w = weight[g * group_out:(g + 1) * group_out].reshape(group_out, -1)
        cols = windows[:, g * group_in:(g + 1) * group_in]
        cols = np.moveaxis(cols, 1, 1 + rank)  # (N, *out, C_g, *kernel)
        cols = np.ascontiguousarray(cols).reshape(n * math.prod(out_shape), -1)
        outputs.append((cols @ w.T).reshape(n, *out_shape, group_out))
    out = outputs[0] if groups == 1 else np.concatenate(outputs, axis=-1)
    out = np.moveaxis(out, -1, 1)
    if "bias" in a:
        out = out + f32(a["bias"]).reshape(1, -1, *([1] * rank))
    return np.ascontiguousarray(out)


def scaled_dot_product_attention(a: dict[str, Any]) -> np.ndarray:
    """softmax(Q·Kᵀ/√E + mask)·V (iOS18 ``transformers.py``; --min-target macOS15 fuses attention into it).
    A bool mask keeps the positions where it is True.  Fused: one fp16 rounding, at the output."""
    q, k, v = f32(a["query"]), f32(a["key"]), f32(a["value"])
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) / np.float32(math.sqrt(q.shape[-1]))
    if "attn_mask" in a:
        mask = np.asarray(a["attn_mask"])
        scores = np.where(mask, scores, -np.inf) if mask.dtype == np.bool_ else scores + f32(mask)
    weights = np.exp(scores - np.max(scores, axis=-1, keepdims=True))
    return np.matmul(weights / np.sum(weights, axis=-1, keepdims=True), v)


OPS = {"linear": linear, "matmul": matmul, "einsum": einsum, "conv": conv,
       "scaled_dot_product_attention": scaled_dot_product_attention}
