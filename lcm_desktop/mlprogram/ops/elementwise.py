"""Elementwise ops (iOS15 ``elementwise_binary``, ``elementwise_unary``, ``activation``, ``select``).

Binary ops broadcast as numpy does (the MIL definition's rule).  Float inputs arrive as float32;
int and bool inputs keep their dtypes, so ``add`` on int32 indices stays integer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .common import f32, scalar


def _binary(fn):
    return lambda a: fn(a["x"], a["y"])


def _unary(fn):
    return lambda a: fn(a["x"])


def erf(x: Any) -> np.ndarray:
    """The error function, |error| ≤ 1.5e-7 (Abramowitz & Stegun 7.1.26; numpy has no erf), computed in float64."""
    x = np.asarray(x, dtype=np.float64)
    sign, z = np.sign(x), np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-z * z))).astype(np.float32)


def sigmoid(x: Any) -> np.ndarray:
    """1 / (1 + e^-x), written as 0.5·(1 + tanh(x/2)) so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * f32(x)))


def gelu(a: dict[str, Any]) -> np.ndarray:
    x = f32(a["x"])
    mode = scalar(a, "mode", "EXACT")
    if mode == "EXACT":
        return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x * sigmoid(1.702 * x)
    raise ValueError(f"gelu mode must be EXACT, TANH_APPROXIMATION or SIGMOID_APPROXIMATION, got {mode!r}")


def _eps(fn, default: float):
    return lambda a: fn(f32(a["x"]) + np.float32(scalar(a, "epsilon", default)))


BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.true_divide, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum,
    "equal": np.equal, "not_equal": np.not_equal, "greater": np.greater, "greater_equal": np.greater_equal,
    "less": np.less, "less_equal": np.less_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor,
}

UNARY = {
    "abs": np.abs, "ceil": np.ceil, "floor": np.floor, "sign": np.sign, "square": np.square, "sqrt": np.sqrt,
    "exp": np.exp, "exp2": np.exp2, "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh,
    "sinh": np.sinh, "cosh": np.cosh, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atanh": np.arctanh,
    "erf": erf, "sigmoid": sigmoid, "logical_not": np.logical_not,
    "relu": lambda x: np.maximum(x, 0), "relu6": lambda x: np.clip(x, 0, 6),
    "silu": lambda x: f32(x) * sigmoid(x), "softplus": lambda x: np.logaddexp(np.float32(0), f32(x)),
    "softsign": lambda x: f32(x) / (1 + np.abs(f32(x))), "identity": lambda x: x,
}

OPS = {name: _binary(fn) for name, fn in BINARY.items()}
OPS.update({name: _unary(fn) for name, fn in UNARY.items()})
OPS.update({
    "gelu": gelu,
    "log": _eps(np.log, 1e-45),
    "rsqrt": _eps(lambda x: 1.0 / np.sqrt(x), 1e-12),
    "inverse": _eps(lambda x: 1.0 / x, 1e-4),
    "clip": lambda a: np.clip(f32(a["x"]), scalar(a, "alpha"), scalar(a, "beta")),
    "threshold": lambda a: np.maximum(f32(a["x"]), np.float32(scalar(a, "alpha"))),
    "leaky_relu": lambda a: np.where(f32(a["x"]) >= 0, a["x"], np.float32(scalar(a, "alpha", 0.01)) * f32(a["x"])),
    "elu": lambda a: np.where(f32(a["x"]) > 0, a["x"], np.float32(scalar(a, "alpha", 1.0)) * np.expm1(f32(a["x"]))),
    "cast": lambda a: a["x"],  # the interpreter converts to the declared dtype (numpy astype, as coremltools does)
    "select": lambda a: np.where(np.asarray(a["cond"]).astype(bool), a["a"], a["b"]),
})
