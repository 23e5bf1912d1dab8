"""Fusing an LCM-LoRA: equals diffusers' LoRA-loaded model; a LoRA for another base is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cli_output import error_line

from lcm_desktop.core.errors import ConversionError, UnsafeModelError
from lcm_desktop.core.manifest import load_manifest

pytest.importorskip("peft", reason="diffusers' LoRA loading needs peft")

TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
           "conv1", "conv2", "time_emb_proj"]


def make_tiny_lora(base: Path, out: Path, pipeline_class, seed: int = 1) -> Path:
    """A random LoRA for ``base``'s UNet, saved as diffusers saves LCM-LoRAs (pytorch_lora_weights.safetensors)."""
    from diffusers import UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(base / "unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=TARGETS))
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    state = {k: torch.randn_like(v) * 0.1 if "lora_B" in k or "lora.up" in k else v for k, v in state.items()}
    pipeline_class.save_lora_weights(out, unet_lora_layers=state, safe_serialization=True)
    return out / "pytorch_lora_weights.safetensors"


@pytest.fixture(scope="module")
def sd_lora(tiny_sd, tmp_path_factory) -> Path:
    from diffusers import StableDiffusionPipeline

    return make_tiny_lora(tiny_sd, tmp_path_factory.mktemp("lora-sd"), StableDiffusionPipeline)


def _unet_out(unet) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        return unet(
            torch.randn(1, 4, 8, 8, generator=g), torch.tensor(259.0), torch.randn(1, 77, 32, generator=g)
        ).sample


def test_fused_unet_equals_diffusers_lora_model(tiny_sd, sd_lora):
    from diffusers import StableDiffusionPipeline

    from convert.lora import fuse_lcm_lora
    from convert.source import inspect_source, load_pipeline

    reference = StableDiffusionPipeline.from_pretrained(tiny_sd, safety_checker=None, requires_safety_checker=False)
    base = _unet_out(reference.unet)
    reference.load_lora_weights(str(sd_lora))  # LoRA layers active, not fused
    expected = _unet_out(reference.unet)

    pipe = load_pipeline(inspect_source(tiny_sd, ("unet",)), ("unet",))
    assert fuse_lcm_lora(pipe, sd_lora) > 10
    fused = _unet_out(pipe.unet)
    assert not any("lora" in name for name in pipe.unet.state_dict())
    assert ((fused - expected).norm() / expected.norm()).item() < 1e-5
    assert ((expected - base).norm() / base.norm()).item() > 1e-2  # the LoRA really changes the model


def test_conversion_with_lora_records_it(tiny_sd, sd_lora, tmp_path):
    from convert.conversion import run
    from convert.options import ConvertOptions
    from convert.source import content_hash

    run(ConvertOptions(source=tiny_sd, out=tmp_path / "out", lcm_lora=sd_lora.parent, components=("unet",)))
    m = load_manifest(tmp_path / "out")
    assert m.source.lcm_lora == str(sd_lora.resolve()) and m.source.lcm_lora_hash == content_hash(sd_lora)
    assert m.time_cond_proj_dim is None
    assert [s.name for s in m.require("Unet").inputs] == ["sample", "timestep", "encoder_hidden_states"]
    assert all(p.passed for p in m.require("Unet").parity)


def test_lora_for_another_base_is_a_clear_error(tiny_sd, tiny_sdxl, tmp_path, capsys):
    from diffusers import StableDiffusionXLPipeline

    from convert.__main__ import main

    xl_lora = make_tiny_lora(tiny_sdxl, tmp_path / "xl", StableDiffusionXLPipeline)
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
