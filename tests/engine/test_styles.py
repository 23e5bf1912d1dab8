"""Style LoRAs on the PyTorch engine: diffusers' pixels at the same weights, in both key formats, switched
without reloading the model; refusals in one line."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import tiny_models
import torch

from lcm_desktop.core.errors import InvalidRequestError, ModelFormatError, UnsafeModelError
from lcm_desktop.core.lora_file import StyleMismatchError
from lcm_desktop.core.request import GenerationRequest, LoraWeight
from lcm_desktop.engine.engine import Engine
from lcm_desktop.engine.loaders import TorchLoader

pytest.importorskip("peft", reason="diffusers' LoRA loading needs peft")

PROMPT = "a red circle on a blue background"


@pytest.fixture(scope="module")
def style_files(tiny_lcm, tmp_path_factory) -> dict[str, Path]:
    """papercut (UNet + text encoder) in diffusers and kohya keys; ink (another seed, UNet only)."""
    folder = tmp_path_factory.mktemp("styles")
    papercut = tiny_models.make_tiny_style(tiny_lcm, folder / "papercut.safetensors", seed=1)
    return {
        "papercut": papercut,
        "papercut-kohya": tiny_models.to_kohya(papercut, folder / "papercut-kohya.safetensors"),
        "ink": tiny_models.make_tiny_style(tiny_lcm, folder / "ink.safetensors", seed=2, text_encoder=False),
    }


@pytest.fixture(scope="module")
def engine(tiny_lcm, style_files) -> Engine:
    return Engine(TorchLoader(tiny_lcm, device="cpu"), styles=lambda name: style_files[name])


def _pixels(result) -> np.ndarray:
    return np.stack([np.asarray(image) for image in result.images]).astype(np.int16)


def _diffusers_image(tiny_lcm, request, files_and_weights) -> np.ndarray:
    from diffusers import LatentConsistencyModelPipeline

    pipe = LatentConsistencyModelPipeline.from_pretrained(tiny_lcm)
    for index, (file, _) in enumerate(files_and_weights):
        pipe.load_lora_weights(str(file), adapter_name=f"s{index}")
    pipe.set_adapters([f"s{i}" for i in range(len(files_and_weights))], [w for _, w in files_and_weights])
    images = pipe(prompt=request.prompt, num_inference_steps=request.steps, guidance_scale=request.guidance_scale,
                  generator=[torch.Generator("cpu").manual_seed(request.seed)], width=request.width,
                  height=request.height, output_type="np").images
    return (images * 255).round().astype(np.int16)


@pytest.mark.parametrize("style", ["papercut", "papercut-kohya"])
def test_styles_match_diffusers_load_lora_weights_and_set_adapters(engine, tiny_lcm, style_files, style):
    bare = engine.generate(GenerationRequest(PROMPT, steps=2, seed=5))
    for weight in (0.5, 1.0):
        result = engine.generate(GenerationRequest(PROMPT, steps=2, seed=5, loras=(LoraWeight(style, weight),)))
        expected = _diffusers_image(tiny_lcm, result.request, [(style_files[style], weight)])
        assert np.abs(_pixels(result) - expected).max() <= 1, (style, weight)
        assert np.abs(_pixels(result) - _pixels(bare)).mean() > 2  # the style really changes the picture
    assert result.lora_hashes == ((style, _addnet(style_files[style])),)


@pytest.mark.filterwarnings("ignore:Already found a `peft_config`")
def test_stacked_styles_match_diffusers(engine, tiny_lcm, style_files):
    loras = (LoraWeight("papercut-kohya", 0.8), LoraWeight("ink", -0.6))
    result = engine.generate(GenerationRequest(PROMPT, steps=2, seed=9, loras=loras))
    expected = _diffusers_image(tiny_lcm, result.request,
                                [(style_files["papercut-kohya"], 0.8), (style_files["ink"], -0.6)])
    assert np.abs(_pixels(result) - expected).max() <= 1


def test_switching_styles_does_not_reload_the_model(tiny_lcm, style_files):
    calls = []

    def loader():
        calls.append(1)
        return TorchLoader(tiny_lcm, device="cpu")()

    engine = Engine(loader, styles=lambda name: style_files[name])
    comps = engine.load()
    unet, encoder = comps.denoiser.unet, comps.text_encoder.pairs[0][1]
    base = {k: v.clone() for k, v in unet.state_dict().items() if "lora" not in k}
    request = GenerationRequest(PROMPT, steps=1, seed=3)
    plain = _pixels(engine.generate(request))
    started = time.perf_counter()
    first = engine.generate(GenerationRequest(PROMPT, steps=1, seed=3, loras=(LoraWeight("papercut", 1.0),)))
    with_load = time.perf_counter() - started
    assert comps.styles.loads == 1
    for weight in (0.3, 1.0, 0.7):  # new weights, back and forth: no file is loaded again
        engine.generate(GenerationRequest(PROMPT, steps=1, seed=3, loras=(LoraWeight("papercut", weight),)))
    again = engine.generate(GenerationRequest(PROMPT, steps=1, seed=3, loras=(LoraWeight("papercut", 1.0),)))
    assert np.array_equal(_pixels(first), _pixels(again))
    assert np.array_equal(_pixels(engine.generate(request)), plain)  # no styles: the bare model, exactly
    assert len(calls) == 1 and comps.styles.loads == 1
    assert engine.components.denoiser.unet is unet and engine.components.text_encoder.pairs[0][1] is encoder
    after = {k: v for k, v in unet.state_dict().items() if "lora" not in k and "base_layer" not in k}
    for key, value in base.items():  # the base weights are untouched (LoRA layers wrap them, unfused)
        assert torch.equal(after.get(key, unet.state_dict().get(key.replace(".weight", ".base_layer.weight"),
                                                                   value)), value)
    assert comps.styles.last_switch_seconds < with_load


def test_text_encoder_weight_changes_invalidate_the_prompt_cache(engine):
    a = engine.generate(GenerationRequest(PROMPT, steps=1, seed=2, loras=(LoraWeight("papercut", 0.2),)))
    b = engine.generate(GenerationRequest(PROMPT, steps=1, seed=2, loras=(LoraWeight("papercut", 0.9),)))
    assert not b.encoder_cache_hit  # the text encoder's LoRA changed: a new embedding
    c = engine.generate(GenerationRequest(PROMPT, steps=1, seed=2, loras=(LoraWeight("papercut", 0.2),)))
    assert c.encoder_cache_hit and np.array_equal(_pixels(a), _pixels(c))
    engine.generate(GenerationRequest(PROMPT, steps=1, seed=2))
    for weight in (0.5, 0.9):  # ink is UNet-only: the bare model's embedding is the right one
        assert engine.generate(GenerationRequest(PROMPT, steps=1, seed=2, loras=(LoraWeight("ink", weight),))) \
            .encoder_cache_hit


@pytest.mark.filterwarnings("ignore:Already found a `peft_config`")
def test_a_style_on_a_model_with_an_lcm_lora_fused(tiny_sd, tmp_path):
    """Base + LCM-LoRA (fused at load) + a style on top: diffusers' pixels with both adapters active."""
    from diffusers import LCMScheduler, StableDiffusionPipeline

    lcm = tiny_models.make_tiny_lora(tiny_sd, tmp_path / "lcm")
    style = tiny_models.to_kohya(tiny_models.make_tiny_style(tiny_sd, tmp_path / "s.safetensors"),
                                 tmp_path / "k.safetensors")
    engine = Engine(TorchLoader(tiny_sd, device="cpu", lora=lcm), styles=lambda name: style)
    result = engine.generate(GenerationRequest(PROMPT, steps=2, seed=4, guidance_scale=1.0,
                                               loras=(LoraWeight("k", 0.8),)))
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    pipe.load_lora_weights(str(lcm), adapter_name="lcm")
    pipe.load_lora_weights(str(style), adapter_name="style")
    pipe.set_adapters(["lcm", "style"], [1.0, 0.8])
    images = pipe(prompt=PROMPT, num_inference_steps=2, guidance_scale=1.0, width=64, height=64, output_type="np",
                  generator=[torch.Generator("cpu").manual_seed(4)]).images
    assert np.abs(_pixels(result) - (images * 255).round().astype(np.int16)).max() <= 1


def test_sdxl_style_with_both_text_encoders_matches_diffusers(tiny_sdxl, tmp_path):
    """SDXL-class: kohya lora_te1_/lora_te2_ keys reach both text encoders, as diffusers loads them."""
    from diffusers import LCMScheduler, StableDiffusionXLPipeline

    made = tiny_models.make_tiny_style(tiny_sdxl, tmp_path / "xl.safetensors")
    style = tiny_models.to_kohya(made, tmp_path / "xl-kohya.safetensors", sdxl=True)
    engine = Engine(TorchLoader(tiny_sdxl, device="cpu"), styles=lambda name: style)
    result = engine.generate(GenerationRequest(PROMPT, steps=2, seed=6, guidance_scale=1.0,
                                               loras=(LoraWeight("xl", 0.7),)))
    layers = engine.components.styles._loaded[next(iter(engine.components.styles._loaded))].layers
    assert layers["text_encoder"] > 0 and layers["text_encoder_2"] > 0 and layers["unet"] > 0
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    pipe.load_lora_weights(str(style), adapter_name="xl")
    pipe.set_adapters(["xl"], [0.7])
    images = pipe(prompt=PROMPT, num_inference_steps=2, guidance_scale=1.0, width=64, height=64, output_type="np",
                  generator=[torch.Generator("cpu").manual_seed(6)]).images
    assert np.abs(_pixels(result) - (images * 255).round().astype(np.int16)).max() <= 1


def test_refusals_are_one_line(engine, tiny_sdxl, tmp_path):
    from safetensors.torch import save_file

    loha = tmp_path / "loha.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a": torch.zeros(2, 2),
               "lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_b": torch.zeros(2, 2)}, loha)
    stray = tmp_path / "stray.safetensors"  # a LoRA whose layers exist in no SD model
    save_file({"lora_unet_nowhere_block_to_q.lora_down.weight": torch.ones(4, 32),
               "lora_unet_nowhere_block_to_q.lora_up.weight": torch.ones(32, 4)}, stray)
    xl = tiny_models.make_tiny_style(tiny_sdxl, tmp_path / "xl.safetensors")
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"\x80\x04")
    files = {"loha": loha, "stray": stray, "xl": xl, "old": ckpt}
    local = Engine.from_components(engine.components, styles=lambda name: files[name])
    cases = [("loha", ModelFormatError, r"loha.safetensors is a LoHa \(LyCORIS\) file, which diffusers cannot load"),
             ("stray", ModelFormatError, r"changed nothing in tiny-lcm: none of its 1 layers matched|does not fit"),
             ("xl", StyleMismatchError, r"made for SDXL-class models but tiny-lcm is SD1.5-class"),
             ("old", UnsafeModelError, r"old.ckpt.*pickles")]
    for name, error, message in cases:
        with pytest.raises(error, match=message) as info:
            local.generate(GenerationRequest(PROMPT, steps=1, seed=1, loras=(LoraWeight(name),)))
        assert "\n" not in str(info.value)
    plain = local.generate(GenerationRequest(PROMPT, steps=1, seed=1))  # a refused style leaves nothing behind
    assert plain.lora_hashes == ()


def test_styles_without_a_resolver_or_on_core_ml_are_clear(tiny_lcm):
    with pytest.raises(InvalidRequestError, match="styles=StyleStore"):
        Engine(TorchLoader(tiny_lcm, device="cpu")).generate(
            GenerationRequest(PROMPT, steps=1, loras=(LoraWeight("x"),)))


def _addnet(path: Path) -> str:
    import hashlib

    data = path.read_bytes()
    return hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()[:12]


def test_a_prompts_lora_tag_applies_the_style_as_loras_does(engine):
    """AUTOMATIC1111's ``<lora:name:weight>``: the same pixels as naming the style in ``loras``; the tag text
    never reaches the text encoder; ``loras`` wins over a tag for the same style (an unknown name:
    tests/models/test_styles.py)."""
    tagged = engine.generate(GenerationRequest(f"{PROMPT} <lora:papercut:0.5>", steps=2, seed=5))
    named = engine.generate(GenerationRequest(PROMPT, steps=2, seed=5, loras=(LoraWeight("papercut", 0.5),)))
    assert (_pixels(tagged) == _pixels(named)).all()
    assert tagged.lora_hashes == named.lora_hashes and tagged.request.prompt.endswith("<lora:papercut:0.5>")
    both = GenerationRequest(f"{PROMPT} <lora:papercut:0.5> <lora:ink>", loras=(LoraWeight("papercut", 0.9),))
    assert both.styles == (LoraWeight("papercut", 0.9), LoraWeight("ink", 1.0))
