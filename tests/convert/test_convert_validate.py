"""The Mac-side check (Core ML vs PyTorch, PSNR ≥ 35 dB) wired through a conversion, with a stand-in predictor.

On a Mac the predictor is Core ML's; here it is the captured wrapper run in fp16 (what Core ML
computes), or the same with noise added, to prove the check both records and rejects.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch

from lcm_desktop.core.errors import ParityError
from lcm_desktop.core.manifest import load_manifest


class Fp16Predictor:
    def __init__(self, wrapper, noise: float = 0.0):
        self.module = copy.deepcopy(wrapper).half().eval()
        self.wrapper, self.noise = wrapper, noise

    def predict(self, data):
        with torch.no_grad():
            out = self.module(*(torch.from_numpy(data[n]).half() for n in self.wrapper.input_names))
        out = out if isinstance(out, tuple) else (out,)
        return {n: y.float().numpy() + self.noise * np.random.default_rng(0).standard_normal(y.shape)
                for n, y in zip(self.wrapper.output_names, out)}


def _convert_with_predictor(tiny_lcm, out, monkeypatch, noise: float):
    import convert.conversion
    from convert import validate
    from convert.components import build_wrappers
    from convert.conversion import run
    from convert.options import ConvertOptions

    options = ConvertOptions(source=tiny_lcm, out=out, components=("vae_decoder",))
    wrappers = build_wrappers(options)
    loaded = []

    def load(package):
        loaded.append(package.name)
        return Fp16Predictor(wrappers[package.stem], noise)

    monkeypatch.setattr(convert.conversion.validate, "coreml_available", lambda: True)
    monkeypatch.setattr(convert.conversion.validate, "check_coreml_vs_torch",
                        functools.partial(validate.check_coreml_vs_torch, load=load))
    lines = []
    run(options, progress=lines.append)
    return loaded, lines


def test_psnr_is_measured_and_recorded_on_a_mac(tiny_lcm, tmp_path, monkeypatch):
    loaded, lines = _convert_with_predictor(tiny_lcm, tmp_path / "out", monkeypatch, noise=0.0)
    assert loaded == ["VAEDecoder.mlpackage"]
    [psnr] = [p for p in load_manifest(tmp_path / "out").require("VAEDecoder").parity if p.check == "coreml_vs_torch"]
    assert psnr.metric == "psnr_db" and psnr.threshold == 35.0 and 45 < psnr.value < 120
    assert any("Core ML vs PyTorch image" in line for line in lines)
    assert not load_manifest(tmp_path / "out").notes  # nothing left unmeasured


def test_a_component_below_35_db_fails_the_conversion(tiny_lcm, tmp_path, monkeypatch):
    with pytest.raises(ParityError, match=r"VAEDecoder.image: Core ML output is \d+\.\d dB PSNR"):
        _convert_with_predictor(tiny_lcm, tmp_path / "out", monkeypatch, noise=0.2)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_off_a_mac_the_manifest_says_psnr_was_not_measured(coreml_lcm):
    import sys

    if sys.platform == "darwin":
        pytest.skip("measured on a Mac")
    assert "coreml_vs_torch PSNR not measured" in load_manifest(coreml_lcm).notes[0]
    checks = {p.check for c in load_manifest(coreml_lcm).components for p in c.parity}
    assert checks == {"traced_vs_eager", "reference_vs_torch"}  # the executor's PSNR, measured here


@pytest.mark.macos
def test_on_a_mac_every_component_is_within_35_db_of_pytorch(coreml_lcm):
    """The real check: the conversion loaded each package in Core ML and recorded its PSNR."""
    for comp in load_manifest(coreml_lcm).components:
        psnrs = [p for p in comp.parity if p.check == "coreml_vs_torch"]
        assert {p.output for p in psnrs} == {s.name for s in comp.outputs}, comp.name
        assert all(p.value >= 35.0 for p in psnrs), comp.name
