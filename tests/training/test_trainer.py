"""A few steps on a tiny LCM: a style file diffusers loads and that changes the image; cancel, resume, refusals."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from lcm_desktop.core.errors import InvalidRequestError, TrainingCancelled, TrainingError
from lcm_desktop.core.paths import AppPaths
from lcm_desktop.training.checkpoint import load_checkpoint
from lcm_desktop.training.style_file import METADATA_KEY, read_style_info
from lcm_desktop.training.trainer import TrainConfig, checkpoint_path, train


def _config(pictures, model, **kw):
    base = dict(name="pinkish", steps=6, rank=4, lr=1e-2, batch=2, trigger="pink", caption="a {} square",
                checkpoint_every=2, preview_every=0, text_encoder=False)
    return TrainConfig(pictures, model, **{**base, **kw})


def _latents(pipe, lora=None):
    """The pipeline's final latents (the tiny VAE decodes everything to near-grey, so compare before it)."""
    if lora is not None:
        pipe.load_lora_weights(str(lora))
    out = pipe("a pink square", num_inference_steps=4, guidance_scale=6.0, height=64, width=64,
               generator=torch.Generator().manual_seed(0), output_type="latent").images[0]
    if lora is not None:
        pipe.unload_lora_weights()
    return out


def test_a_few_steps_make_a_style_diffusers_loads_and_that_changes_the_image(tiny_lcm, pictures):
    from diffusers import LatentConsistencyModelPipeline
    from safetensors import safe_open

    progress = []
    result = train(_config(pictures, tiny_lcm, preview_every=3), on_progress=progress.append)
    assert result.output == AppPaths.default().data / "styles" / "pinkish.safetensors"
    assert [p.step for p in progress] == [1, 2, 3, 4, 5, 6] and progress[-1].eta_seconds == 0
    assert [p.preview.size if p.preview else None for p in progress] == [None, None, (64, 64), None, None, (64, 64)]
    assert not checkpoint_path("pinkish").parent.exists()  # a finished run leaves no checkpoint behind
    with safe_open(str(result.output), "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert any(k.startswith("unet.") and k.endswith("to_q.lora_A.weight") for k in keys)
    assert all(k.startswith("unet.") and (".lora_A." in k or ".lora_B." in k) for k in keys)
    info = read_style_info(result.output)
    assert (info.trigger, info.steps, info.rank, info.method, info.family) == ("pink", 6, 4, "lcf", "sd")
    assert json.loads(meta["ss_tag_frequency"]) == {"pinkish": {"a pink square": 4, "pink": 4}}
    assert METADATA_KEY in meta

    pipe = LatentConsistencyModelPipeline.from_pretrained(tiny_lcm)
    pipe.set_progress_bar_config(disable=True)
    before, with_style = _latents(pipe), _latents(pipe, result.output)
    assert (before - with_style).abs().mean() > 0.02  # the style changes the picture
    assert (before - _latents(pipe)).abs().max() == 0  # and is gone again after unloading


def test_cancel_keeps_a_checkpoint_and_resume_continues_it_exactly(tiny_lcm, pictures, tmp_path):
    cancel = threading.Event()

    def stop_at_3(p):
        if p.step == 3:
            cancel.set()

    with pytest.raises(TrainingCancelled) as err:
        train(_config(pictures, tiny_lcm), on_progress=stop_at_3, cancel=cancel)
    assert (err.value.step, err.value.total) == (3, 6)
    saved = load_checkpoint(checkpoint_path("pinkish"))
    assert saved.step == 3 and len(saved.losses) == 3
    assert saved.tensors["opt.0.step"].item() == 3  # AdamW's own step count went into the checkpoint
    assert saved.tensors["opt.0.exp_avg_sq"].abs().sum() > 0

    with pytest.raises(TrainingError, match="--resume"):
        train(_config(pictures, tiny_lcm))
    with pytest.raises(TrainingError, match="rank"):
        train(_config(pictures, tiny_lcm, rank=8, resume=True))
    steps = []
    resumed = train(_config(pictures, tiny_lcm, resume=True), on_progress=lambda p: steps.append(p.step))
    assert resumed.resumed_from == 3 and steps == [4, 5, 6] and resumed.steps == 6

    straight = train(_config(pictures, tiny_lcm, name="straight"))  # the same run, never interrupted
    assert straight.losses == pytest.approx(resumed.losses, abs=1e-6)  # the checkpoint keeps 6 decimals
    from safetensors.torch import load_file

    a, b = load_file(resumed.output), load_file(straight.output)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_an_existing_style_is_replaced_only_with_force(tiny_lcm, pictures):
    first = train(_config(pictures, tiny_lcm, steps=1))
    with pytest.raises(TrainingError, match="exists already.*--force"):
        train(_config(pictures, tiny_lcm, steps=1))
    again = train(_config(pictures, tiny_lcm, steps=2, force=True))
    assert again.output == first.output and read_style_info(again.output).steps == 2


def test_full_fine_tune_makes_a_model_folder(tiny_lcm, pictures):
    result = train(_config(pictures, tiny_lcm, full=True, steps=2, lr=1e-4))
    assert result.output == AppPaths.default().data / "models" / "pinkish"
    assert (result.output / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (result.output / "vae").is_dir() and not list(result.output.parent.glob(".*.part"))


@pytest.mark.parametrize(("field", "value"), [("name", "../evil"), ("name", "x" * 65), ("steps", 0), ("rank", 0),
                                              ("lr", 0.0), ("size", 60), ("method", "dreambooth")])
def test_bad_settings_are_refused_before_loading(tmp_path, field, value):
    with pytest.raises(InvalidRequestError) as err:
        TrainConfig(tmp_path, tmp_path, **{"name": "ok", field: value})
    assert err.value.field == field


def test_a_text_encoder_lora_goes_into_the_style_and_diffusers_loads_it(tiny_lcm, pictures):
    from diffusers import LatentConsistencyModelPipeline
    from safetensors.torch import load_file

    result = train(_config(pictures, tiny_lcm, steps=3, text_encoder=True, curriculum=True))
    tensors = load_file(result.output)
    text_keys = [k for k in tensors if k.startswith("text_encoder.")]
    assert text_keys and all(".self_attn." in k and (".lora_A." in k or ".lora_B." in k) for k in text_keys)
    pipe = LatentConsistencyModelPipeline.from_pretrained(tiny_lcm)
    ids = pipe.tokenizer(["a pink square"], return_tensors="pt").input_ids
    with torch.no_grad():
        before = pipe.text_encoder(ids)[0]
        pipe.load_lora_weights(str(result.output))
        after = pipe.text_encoder(ids)[0]
    assert (before - after).abs().mean() > 1e-4  # the trained text-encoder LoRA changes the caption's states
