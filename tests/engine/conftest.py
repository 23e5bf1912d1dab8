"""Fixtures the Core ML backend's test modules share (session-wide: each only reads them)."""

from __future__ import annotations

import pytest

from lcm_desktop.engine.coreml_backend import load_coreml_components


@pytest.fixture(scope="session")
def coreml(coreml_lcm, tmp_path_factory):
    """The converted tiny LCM on the reference executor (loaded once: the tests only read it)."""
    cache = tmp_path_factory.mktemp("reference-cache") / "coreml"
    comps = load_coreml_components(coreml_lcm, compute_units="REFERENCE", cache_dir=cache)
    return comps, cache


@pytest.fixture(scope="session")
def torch_lcm(tiny_lcm):
    from lcm_desktop.engine.torch_backend import load_torch_components

    return load_torch_components(tiny_lcm, device="cpu", dtype="float32")
