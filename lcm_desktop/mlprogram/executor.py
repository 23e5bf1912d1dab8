"""Run a ``Program``'s ops in order on numpy arrays: the interpreter.

``Executor(program)`` checks every op is known (else one ``ModelFormatError`` naming the op and
the package), expands the ``constexpr_*`` ops once into constants, and works out when each
intermediate value is last used, so a full-size UNet holds only its live activations.
``predict(feeds)`` has ``coremltools.models.MLModel.predict``'s shape — dict of arrays in, dict
of arrays out — so it is a ``Predictor`` for the Core ML backend as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InvalidRequestError, ModelFormatError
from .ops import OPS
from .program import MEMORY_BUDGET_BYTES, OUTPUT_DTYPES, Op, Program, conform, declared_bytes


class Executor:
    def __init__(self, program: Program):
        self.program = program
        self.name = Path(program.source).name
        unknown = sorted({op.type for op in program.ops if op.type not in OPS})
        if unknown:
            others = f" (and {', '.join(unknown[1:])})" if len(unknown) > 1 else ""
            raise ModelFormatError(
                f"{self.name} uses the ML Program op '{unknown[0]}'{others}, which the reference executor does not "
                "implement; run this model with Core ML on a Mac."
            )
        self._check_budget(program)
        self.constants = dict(program.constants)
        self.ops: list[Op] = []
        for op in program.ops:
            if op.type.startswith("constexpr_"):  # compressed weights: expanded exactly, once
                self._run_op(op, self.constants)
            else:
                self.ops.append(op)
        self._free_after = self._lifetimes()

    def _check_budget(self, program: Program) -> None:
        """Refuse, before any allocation, a package whose weights plus the most values alive at once (as declared)
        exceed ``MEMORY_BUDGET_BYTES``."""
        sizes = {t.name: declared_bytes(t) for op in program.ops for t in op.outputs}
        weight_names = {t.name for op in program.ops if op.type.startswith("constexpr_") for t in op.outputs}
        weights = sum(getattr(v, "nbytes", 0) for v in program.constants.values())
        weights += sum(sizes[name] for name in weight_names)
        last_use: dict[str, int] = {}
        for index, op in enumerate(program.ops):
            for name in _names(op):
                last_use[name] = index
        kept = set(program.outputs) | weight_names
        live = peak = 0
        for index, op in enumerate(program.ops):
            if op.type.startswith("constexpr_"):
                continue
            live += sum(sizes[t.name] for t in op.outputs)
            peak = max(peak, live)
            dead = {t.name for t in op.outputs if t.name not in last_use}
            dead |= {name for name in _names(op) if last_use[name] == index and name in sizes}
            live -= sum(sizes[name] for name in dead - kept)
        if weights + peak > MEMORY_BUDGET_BYTES:
            raise ModelFormatError(
                f"{self.name} needs about {(weights + peak) / 2**30:.1f} GiB as declared (weights and the largest "
                f"set of values alive at once); the reference executor's budget is "
                f"{MEMORY_BUDGET_BYTES / 2**30:g} GiB — convert the model again, or run it with Core ML on a Mac."
            )

    def _lifetimes(self) -> list[tuple[str, ...]]:
        """For each op, the computed values nobody needs after it (program outputs are kept)."""
        last_use: dict[str, int] = {}
        for index, op in enumerate(self.ops):
            for value in op.inputs.values():
                for name in (value,) if isinstance(value, str) else value:
                    if name not in self.constants:
                        last_use[name] = index
        keep = set(self.program.outputs)
        free: list[list[str]] = [[] for _ in self.ops]
        for name, index in last_use.items():
            if name not in keep:
                free[index].append(name)
        return [tuple(names) for names in free]

    def predict(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run ``main`` on ``feeds`` (name → array of the declared shape); returns output name → array."""
        env: dict[str, Any] = dict(self.constants)
        for spec in self.program.inputs:
            if spec.name not in feeds:
                raise InvalidRequestError(f"{self.name} inputs", sorted(feeds), f"a mapping with '{spec.name}'")
            value = np.asarray(feeds[spec.name])
            if spec.shape is not None and tuple(value.shape) != spec.shape:
                raise InvalidRequestError(
                    f"{self.name}.{spec.name}", f"shape {tuple(value.shape)}", f"shape {spec.shape}"
                )
            env[spec.name] = conform(value, spec.dtype)
        for op, dead in zip(self.ops, self._free_after, strict=True):
            self._run_op(op, env)
            for name in dead:
                env.pop(name, None)
        return {
            name: np.asarray(env[name]).astype(
                OUTPUT_DTYPES.get(self.program.output_types.get(name, "fp32"), np.float32), copy=False
            )
            for name in self.program.outputs
        }

    def _run_op(self, op: Op, env: dict[str, Any]) -> None:
        args = {
            key: env[value] if isinstance(value, str) else [env[n] for n in value] for key, value in op.inputs.items()
        }
        try:
            with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
                result = OPS[op.type](args)
        except (ValueError, IndexError, TypeError, KeyError, NotImplementedError) as exc:
            raise ModelFormatError(
                f"{self.name}: op '{op.name}' ({op.type}) could not run ({type(exc).__name__}: {exc}); "
                "the package does not follow the ML Program spec as the reference executor reads it."
            ) from exc
        results = result if isinstance(result, tuple) else (result,)
        if len(results) != len(op.outputs):
            raise ModelFormatError(f"{self.name}: op '{op.name}' ({op.type}) gave {len(results)} outputs, "
                                   f"the program declares {len(op.outputs)}.")
        for out, value in zip(op.outputs, results):
            env[out.name] = conform(value, out.dtype)



def _names(op: Op) -> set[str]:
    """The variable names an op reads."""
    return {name for value in op.inputs.values() for name in ((value,) if isinstance(value, str) else value)}
