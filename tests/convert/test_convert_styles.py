"""Baking style LoRAs at conversion: the manifest records them and the Core ML package (run by the reference
executor) makes the PyTorch engine's image with the same styles at the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_models
from cli_output import error_line

from lcm_desktop.core.errors import InvalidRequestError
from lcm_desktop.core.manifest import BakedLora, load_manifest
from lcm_desktop.core.parity import MIN_PSNR_DB, psnr

pytest.importorskip("peft", reason="diffusers' LoRA loading needs peft")

PROMPT = "a red circle on a blue background"


@pytest.fixture(scope="module")
def styles(tiny_lcm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("styles")
    made = tiny_models.make_tiny_style(tiny_lcm, folder / "made.safetensors", seed=1)
    ink = tiny_models.make_tiny_style(tiny_lcm, folder / "ink.safetensors", seed=2, text_encoder=False)
    return {"papercut": tiny_models.to_kohya(made, folder / "papercut.safetensors"), "ink": ink}


def test_baked_styles_match_the_pytorch_engine(tiny_lcm, styles, tmp_path_factory, tmp_path):
    from convert.__main__ import main as convert_main
    from lcm_desktop.core.lora_file import lora_hash
    from lcm_desktop.core.request import GenerationRequest, LoraWeight
    from lcm_desktop.engine.engine import Engine
    from lcm_desktop.engine.loaders import CoreMLLoader, TorchLoader

    out = tmp_path / "baked"
    argv = [str(tiny_lcm), "--out", str(out), "--components", "text_encoder,unet,vae_decoder",
            "--lora", f"{styles['papercut']}:0.8", "--lora", f"{styles['ink']}:-0.5"]
    assert convert_main(argv) == 0
    manifest = load_manifest(out)
    assert manifest.loras == (
        BakedLora("papercut", lora_hash(styles["papercut"]), 0.8, str(styles["papercut"].resolve())),
        BakedLora("ink", lora_hash(styles["ink"]), -0.5, str(styles["ink"].resolve())),
    )
    assert all(p.passed for c in manifest.components for p in c.parity)
    from lcm_desktop.core.model_info import describe_model

    assert describe_model(out).baked_styles == (("papercut", 0.8), ("ink", -0.5))  # what the app lists

    request = GenerationRequest(PROMPT, steps=2, seed=7)
    coreml_engine = Engine(CoreMLLoader(out, compute_units="REFERENCE", cache_dir=tmp_path / "cache"))
    coreml = coreml_engine.generate(request)
    assert coreml.lora_hashes == (("papercut", lora_hash(styles["papercut"])), ("ink", lora_hash(styles["ink"])))
    with pytest.raises(InvalidRequestError, match=r"styles are baked in .*baked here: papercut, ink"):
        coreml_engine.generate(GenerationRequest(PROMPT, steps=2, seed=7, loras=(LoraWeight("papercut"),)))
    torch_engine = Engine(TorchLoader(tiny_lcm, device="cpu"), styles=lambda name: styles[name])
    live = torch_engine.generate(GenerationRequest(PROMPT, steps=2, seed=7, loras=(
        LoraWeight("papercut", 0.8), LoraWeight("ink", -0.5))))
    bare = torch_engine.generate(request)
    ours, ref, plain = (np.asarray(r.images[0], np.float64) for r in (coreml, live, bare))
    print(f"baked vs live PSNR {psnr(ours, ref):.1f} dB, baked vs bare {psnr(ours, plain):.1f} dB")
    assert psnr(ours, ref) >= MIN_PSNR_DB, psnr(ours, ref)
    assert psnr(ours, plain) < psnr(ours, ref) - 10  # the baked styles, not the bare model, are what matches


def test_a_style_for_another_family_is_refused_before_any_work(tiny_lcm, tiny_sdxl, tmp_path, capsys):
    from convert.__main__ import main as convert_main

    xl = tiny_models.make_tiny_style(tiny_sdxl, tmp_path / "xl.safetensors")
    out = tmp_path / "out"
    assert convert_main([str(tiny_lcm), "--out", str(out), "--components", "unet", "--lora", f"{xl}:0.8"]) == 2
    assert "The style xl is made for SDXL-class models but tiny-lcm is SD1.5-class" in error_line(
        capsys.readouterr().err)
    assert not out.exists()


def test_lora_weights_are_parsed_and_checked(tmp_path):
    from convert.options import ConvertOptions, parse_lora
    from lcm_desktop.core.errors import ConversionError

    assert parse_lora("a/b.safetensors:0.8") == (tmp_path.__class__("a/b.safetensors"), 0.8)
    assert parse_lora("C:/styles/b.safetensors") == (tmp_path.__class__("C:/styles/b.safetensors"), 1.0)
    with pytest.raises(ConversionError, match="the weight must be from -4 to 4"):
        ConvertOptions(source=tmp_path, out=tmp_path / "o", loras=((tmp_path / "s.safetensors", 9.0),))


def test_a_style_with_nan_weights_is_not_baked(tiny_lcm, styles, tmp_path):
    import torch
    from diffusers import LatentConsistencyModelPipeline
    from safetensors.torch import load_file, save_file

    from convert.lora import fuse_styles
    from lcm_desktop.core.errors import ConversionError

    tensors = load_file(styles["ink"])
    first = sorted(tensors)[0]
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    save_file(tensors, tmp_path / "nan.safetensors")
    pipe = LatentConsistencyModelPipeline.from_pretrained(tiny_lcm, safety_checker=None)
    with pytest.raises(ConversionError, match="nan.safetensors holds NaN or infinite weights"):
        fuse_styles(pipe, ((tmp_path / "nan.safetensors", 1.0),), "tiny-lcm")
