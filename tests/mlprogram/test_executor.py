"""The reference executor on real packages written by ``python -m convert`` (the tiny test models).

Each package runs against the PyTorch wrapper the converter captured, fp32, on the converter's
own example inputs.  fp16 rounding at every op boundary must show (below ~100 dB) yet stay far
above Apple's 35 dB; fp32 programs must not be rounded; palettized weights must expand to the
very values coremltools decompresses them to.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from tiny_models import converted, wrappers_for

from convert.validate import psnr
from lcm_desktop.core.errors import InvalidRequestError, ModelCorruptError, ModelFormatError
from lcm_desktop.core.manifest import load_manifest
from lcm_desktop.mlprogram import Executor, load_program


def _run_against_torch(folder, name: str, wrappers) -> dict[str, float]:
    wrapper = wrappers[name]
    inputs = wrapper.example_inputs(torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = wrapper(*inputs)
    ref = ref if isinstance(ref, tuple) else (ref,)
    out = Executor(load_program(folder / f"{name}.mlpackage")).predict(
        {n: x.numpy() for n, x in zip(wrapper.input_names, inputs, strict=True)})
    assert set(out) == set(wrapper.output_names) and all(v.dtype == np.float32 for v in out.values())
    return {n: psnr(out[n], r.numpy()) for n, r in zip(wrapper.output_names, ref, strict=True)}


@pytest.fixture(scope="module")
def lcm_wrappers(coreml_lcm):
    return wrappers_for(coreml_lcm)


@pytest.mark.parametrize("name", ["TextEncoder", "Unet", "VAEDecoder", "VAEEncoder", "TinyDecoder"])
def test_fp16_packages_run_within_fp16_rounding_of_torch(coreml_lcm, lcm_wrappers, name):
    for output, value in _run_against_torch(coreml_lcm, name, lcm_wrappers).items():
        assert 45 < value < 100, f"{name}.{output}: {value:.1f} dB"  # > 100 dB would mean nothing was rounded


def test_fp32_programs_are_computed_in_fp32(coreml_sdxl):
    """The SDXL-class VAE decoder is converted in fp32 (force_upcast): no fp16 rounding anywhere."""
    assert load_manifest(coreml_sdxl).require("VAEDecoder").precision == "float32"
    value = _run_against_torch(coreml_sdxl, "VAEDecoder", wrappers_for(coreml_sdxl))["image"]
    assert value > 110


def test_sdxl_text_encoders_and_unet(coreml_sdxl):
    wrappers = wrappers_for(coreml_sdxl)
    for name in ("TextEncoder", "TextEncoder2", "Unet"):
        assert all(45 < v < 100 for v in _run_against_torch(coreml_sdxl, name, wrappers).values()), name


def test_palettized_weights_expand_to_what_coremltools_decompresses(coreml_lcm_original_6bit):
    from coremltools.converters.mil.mil.ops.defs.iOS16.constexpr_ops import constexpr_lut_to_dense

    program = load_program(coreml_lcm_original_6bit / "Unet.mlpackage")
    luts = [op for op in program.ops if op.type == "constexpr_lut_to_dense"]
    assert len(luts) > 10
    executor = Executor(program)
    assert not any(op.type.startswith("constexpr_") for op in executor.ops), "expanded once, at load"
    for op in luts[:5]:
        c = program.constants
        oracle = constexpr_lut_to_dense.decompress(c[op.inputs["lut"]].astype(np.float16), c[op.inputs["indices"]],
                                                   c[op.inputs["shape"]])
        dense = executor.constants[op.outputs[0].name]
        np.testing.assert_array_equal(dense, oracle.astype(np.float32))
        assert len(np.unique(dense)) <= 64


def test_palettized_packages_lose_some_accuracy_but_stay_above_their_threshold(coreml_lcm_original_6bit, coreml_lcm):
    from convert.validate import min_psnr_db

    six = _run_against_torch(coreml_lcm_original_6bit, "Unet", wrappers_for(coreml_lcm_original_6bit))["noise_pred"]
    fp16 = _run_against_torch(coreml_lcm, "Unet", wrappers_for(coreml_lcm))["noise_pred"]
    assert min_psnr_db(6) < six < fp16 - 10


def test_ios18_packages_grouped_palettes_and_fused_attention(tmp_path_factory, tiny_lcm):
    """--min-target macOS15: iOS18 constexpr_lut_to_dense (unpacked indices) and scaled_dot_product_attention."""
    folder = converted(tmp_path_factory, tiny_lcm, components=("vae_decoder",), palettize=6, min_target="macOS15")
    types = load_program(folder / "VAEDecoder.mlpackage").op_types()
    assert "scaled_dot_product_attention" in types and types["constexpr_lut_to_dense"] > 5
    [parity] = [p for p in load_manifest(folder).require("VAEDecoder").parity if p.check == "reference_vs_torch"]
    assert parity.value > 35  # measured by the converter itself, through the executor


def test_predicting_twice_gives_the_same_outputs(coreml_lcm, lcm_wrappers):
    executor = Executor(load_program(coreml_lcm / "Unet.mlpackage"))
    wrapper = lcm_wrappers["Unet"]
    feeds = {
        n: x.numpy() for n, x in zip(wrapper.input_names, wrapper.example_inputs(torch.Generator().manual_seed(2)))
    }
    first, second = executor.predict(feeds), executor.predict(feeds)
    np.testing.assert_array_equal(first["noise_pred"], second["noise_pred"])
    feeds["timestep"] = feeds["timestep"] + 100
    assert not np.array_equal(executor.predict(feeds)["noise_pred"], first["noise_pred"])


def test_bad_inputs_are_clear_errors(coreml_lcm):
    executor = Executor(load_program(coreml_lcm / "VAEDecoder.mlpackage"))
    with pytest.raises(InvalidRequestError, match=r"VAEDecoder.mlpackage.z.*shape \(1, 4, 8, 8\)"):
        executor.predict({"z": np.zeros((1, 4, 8, 9), np.float32)})
    with pytest.raises(InvalidRequestError, match="'z'"):
        executor.predict({"latents": np.zeros((1, 4, 8, 8), np.float32)})


def test_unreadable_packages_are_clear_errors(coreml_lcm, tmp_path):
    with pytest.raises(ModelFormatError, match="not an .mlpackage folder"):
        load_program(coreml_lcm / "manifest.json")
    broken = tmp_path / "Unet.mlpackage"
    shutil.copytree(coreml_lcm / "Unet.mlpackage", broken)
    weights = broken / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    with pytest.raises(ModelCorruptError, match="Unet.mlpackage cannot be read"):
        load_program(broken)
    model = broken / "Data" / "com.apple.CoreML" / "model.mlmodel"
    model.write_bytes(b"not a protobuf")
    with pytest.raises(ModelCorruptError, match="Unet.mlpackage cannot be read"):
        load_program(broken)


def test_an_op_that_fails_names_the_op_and_the_package(coreml_lcm):
    import dataclasses

    program = load_program(coreml_lcm / "VAEDecoder.mlpackage")
    conv = next(i for i, op in enumerate(program.ops) if op.type == "conv")
    op = program.ops[conv]
    broken = dataclasses.replace(op, inputs={**op.inputs, "weight": op.inputs["bias"]})  # a weight of the wrong rank
    executor = Executor(dataclasses.replace(program, ops=(*program.ops[:conv], broken, *program.ops[conv + 1:])))
    with pytest.raises(ModelFormatError, match=rf"VAEDecoder.mlpackage: op '{op.name}' \(conv\) could not run"):
        executor.predict({"z": np.zeros((1, 4, 8, 8), np.float32)})


def _documented_ops() -> tuple[set[str], set[str]]:
    """(every op in the coverage table of docs/REFERENCE_EXECUTOR.md, the ones marked as emitted by our converter)."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "REFERENCE_EXECUTOR.md").read_text(encoding="utf-8")
    table = [line.split("|")[2] for line in text.split("## Op coverage")[1].split("\n## ")[0].splitlines()
             if line.startswith("| ") and not line.startswith("| family")]
    ops = {name for cell in table for name in re.findall(r"`([a-z_0-9]+)`", cell)}
    emitted = {name for cell in table for name in re.findall(r"\*\*`([a-z_0-9]+)`\*\*", cell)}
    return ops, emitted


def test_the_documented_op_coverage_is_true(coreml_lcm, coreml_lcm_original_6bit, coreml_sdxl):
    from lcm_desktop.mlprogram.ops import OPS

    documented, emitted = _documented_ops()
    assert documented == set(OPS)
    seen = set()
    for folder in (coreml_lcm, coreml_lcm_original_6bit, coreml_sdxl):
        for package in folder.glob("*.mlpackage"):
            seen |= set(load_program(package).op_types())
    assert seen <= emitted, sorted(seen - emitted)
    assert {"conv", "einsum", "constexpr_lut_to_dense", "gather_nd", "upsample_nearest_neighbor", "tanh"} <= seen
