"""Small readers for op inputs, with the MIL definitions' defaults."""

from __future__ import annotations

from typing import Any

import numpy as np


def scalar(args: dict[str, Any], key: str, default: Any = None) -> Any:
    """A scalar input (``axis``, ``epsilon``, ``mode``, …) as a Python value, or ``default`` when absent."""
    if key not in args:
        return default
    value = args[key]
    if isinstance(value, (str, bytes)):
        return value.decode() if isinstance(value, bytes) else value
    array = np.asarray(value)
    return array.item() if array.size == 1 else array


def ints(args: dict[str, Any], key: str, default: Any = None) -> list[int] | None:
    """An integer vector input (``axes``, ``perm``, ``begin``, …) as a list, or ``default`` when absent."""
    if key not in args:
        return default
    return [int(v) for v in np.asarray(args[key]).reshape(-1)]


def bools(args: dict[str, Any], key: str, rank: int) -> list[bool]:
    """A bool mask input, all False when absent."""
    if key not in args:
        return [False] * rank
    return [bool(v) for v in np.asarray(args[key]).reshape(-1)]


def f32(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


def axes_tuple(axes: list[int] | None, rank: int) -> tuple[int, ...] | None:
    return None if axes is None else tuple(a % rank if rank else a for a in axes)
