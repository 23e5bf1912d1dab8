"""The reference executor's memory budget (issue 25 item 2): a tiny package cannot make it allocate gigabytes."""

from __future__ import annotations

import numpy as np
import pytest

from lcm_desktop.core.errors import ModelFormatError
from lcm_desktop.mlprogram import executor as executor_module
from lcm_desktop.mlprogram.executor import Executor
from lcm_desktop.mlprogram.loader import load_program


def _tile_package(path, reps):
    """A package of ~24 KB whose one op declares a float32 tensor of prod(reps) values (tile of its input)."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 1, 1), dtype=types.fp32)], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.reduce_sum(x=mb.tile(x=x, reps=list(reps)), axes=[0, 1, 2], keep_dims=False)

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       skip_model_load=True, compute_precision=ct.precision.FLOAT32)
    model.save(str(path))
    return path


def test_a_tiny_package_declaring_24_gib_is_refused_at_load(tmp_path):
    package = _tile_package(tmp_path / "big.mlpackage", (32768, 32768, 6))
    with pytest.raises(ModelFormatError, match=r"declares a tensor of 24\.0 GiB .* over 4 GiB"):
        load_program(package)


def test_values_alive_at_once_count_against_the_budget(tmp_path, monkeypatch):
    program = load_program(_tile_package(tmp_path / "mid.mlpackage", (64, 64, 64)))  # 1 MiB of float32
    assert Executor(program).predict({"x": np.ones((1, 1, 1), np.float32)})
    monkeypatch.setattr(executor_module, "MEMORY_BUDGET_BYTES", 2**19)
    with pytest.raises(ModelFormatError, match="budget is 0.000488281 GiB"):
        Executor(program)
