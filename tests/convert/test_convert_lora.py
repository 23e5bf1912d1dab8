"""Fusing an LCM-LoRA: equals diffusers' LoRA-loaded model; a LoRA for another base is a clear error."""

from __future__ import annotations

import pytest
import torch
from cli_output import error_line
from tiny_models import make_tiny_lcm_lora

from lcm_desktop.core.errors import ConversionError, UnsafeModelError
from lcm_desktop.core.manifest import load_manifest

pytest.importorskip("peft", reason="diffusers' LoRA loading needs peft")


def _unet_out(unet) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        return unet(
            torch.randn(1, 4, 8, 8, generator=g), torch.tensor(259.0), torch.randn(1, 77, 32, generator=g)
        ).sample


def test_fused_unet_equals_diffusers_lora_model(tiny_sd, tiny_sd_lcm_lora):
    from diffusers import StableDiffusionPipeline

    from convert.lora import fuse_lcm_lora
    from convert.source import inspect_source, load_pipeline

    reference = StableDiffusionPipeline.from_pretrained(tiny_sd, safety_checker=None, requires_safety_checker=False)
    base = _unet_out(reference.unet)
    sd_lora = tiny_sd_lcm_lora
    reference.load_lora_weights(str(sd_lora))  # LoRA layers active, not fused
    expected = _unet_out(reference.unet)

    pipe = load_pipeline(inspect_source(tiny_sd, ("unet",)), ("unet",))
    assert fuse_lcm_lora(pipe, sd_lora) > 10
    fused = _unet_out(pipe.unet)
    assert not any("lora" in name for name in pipe.unet.state_dict())
    assert ((fused - expected).norm() / expected.norm()).item() < 1e-5
    assert ((expected - base).norm() / base.norm()).item() > 1e-2  # the LoRA really changes the model


def test_conversion_with_lora_records_it(coreml_sd_lcm_lora, tiny_sd_lcm_lora):
    from convert.source import content_hash

    m = load_manifest(coreml_sd_lcm_lora)  # converted with lcm_lora=<the LoRA's folder>
    sd_lora = tiny_sd_lcm_lora
    assert m.source.lcm_lora == str(sd_lora.resolve()) and m.source.lcm_lora_hash == content_hash(sd_lora)
    assert m.time_cond_proj_dim is None
    assert [s.name for s in m.require("Unet").inputs] == ["sample", "timestep", "encoder_hidden_states"]
    assert all(p.passed for p in m.require("Unet").parity)


def test_lora_for_another_base_is_a_clear_error(tiny_sd, tiny_sdxl, tmp_path, capsys):
    from convert.__main__ import main

    xl_lora = make_tiny_lcm_lora(tiny_sdxl, tmp_path / "xl")
    out = tmp_path / "out"
    assert main([str(tiny_sd), "--out", str(out), "--lcm-lora", str(xl_lora), "--components", "unet"]) == 2
    assert "does not match this base model" in error_line(capsys.readouterr().err)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_lora_that_touches_nothing_is_a_clear_error(tiny_sd, tmp_path):
    from safetensors.torch import save_file

    from convert.lora import fuse_lcm_lora
    from convert.source import inspect_source, load_pipeline

    stray = tmp_path / "stray.safetensors"
    save_file({"text_encoder.nothing.lora_A.weight": torch.zeros(4, 4),
               "text_encoder.nothing.lora_B.weight": torch.zeros(4, 4)}, stray)
    pipe = load_pipeline(inspect_source(tiny_sd, ("unet",)), ("unet",))
    with pytest.raises(ConversionError, match="does not match this base model|changed no UNet weight"):
        fuse_lcm_lora(pipe, stray)


def test_pickle_and_missing_loras_are_refused(tmp_path):
    from convert.lora import resolve_lora_file

    pickle = tmp_path / "lora.bin"
    pickle.write_bytes(b"\x80\x04")
    with pytest.raises(UnsafeModelError, match="only safetensors"):
        resolve_lora_file(pickle)
    with pytest.raises(Exception, match="does not exist"):
        resolve_lora_file(tmp_path / "none.safetensors")
