"""The executor's op implementations by family: op type → function of the op's named inputs.

Each function takes ``args`` (input name → value: an array, a scalar, a string, or a list of
arrays for variadic inputs such as ``concat``'s ``values``), applies the defaults the MIL op
definition gives for inputs the program left out, computes in float32 (ints and bools in their
own dtypes), and returns an array (or a tuple of arrays for ``split``).  The interpreter rounds
each result to the op's declared output dtype.
"""

from __future__ import annotations

from . import constexpr, elementwise, linalg, reduce, shape

OPS = {**elementwise.OPS, **linalg.OPS, **reduce.OPS, **shape.OPS, **constexpr.OPS}

__all__ = ["OPS"]
