"""No silent garbage (issue 25 item 3): NaN or infinity is one error naming where, never an all-black PNG."""

from __future__ import annotations

import pytest
import tiny_models
import torch
from safetensors.torch import load_file, save_file

from lcm_desktop.core.errors import NonFiniteError
from lcm_desktop.core.request import GenerationRequest, LoraWeight
from lcm_desktop.engine.engine import Engine
from lcm_desktop.engine.loaders import TorchLoader

REQUEST = dict(prompt="a red circle", steps=2, width=64, height=64, seed=3)


@pytest.fixture(scope="module")
def nan_style(tiny_lcm, tmp_path_factory):
    pytest.importorskip("peft", reason="diffusers' LoRA loading needs peft")
    folder = tmp_path_factory.mktemp("nan-style")
    good = tiny_models.make_tiny_style(tiny_lcm, folder / "good.safetensors", seed=1, text_encoder=False)
    tensors = load_file(good)
    first = sorted(tensors)[0]
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    save_file(tensors, folder / "nan.safetensors")
    return {"good": good, "nan": folder / "nan.safetensors"}


@pytest.fixture(scope="module")
def engine(tiny_lcm, nan_style):
    return Engine(TorchLoader(tiny_lcm, device="cpu"), styles=lambda name: nan_style[name])


def test_a_style_with_nan_weights_is_refused_by_name_and_the_engine_still_works(engine):
    with pytest.raises(NonFiniteError, match="The style nan holds NaN or infinite weights"):
        engine.generate(GenerationRequest(**REQUEST, loras=(LoraWeight("nan", 1.0),)))
    result = engine.generate(GenerationRequest(**REQUEST, loras=(LoraWeight("good", 1.0),)))
    assert len(result.images) == 1 and max(result.images[0].getextrema()[0]) > 0


def test_latents_that_become_nan_stop_the_generation_at_that_step(engine, monkeypatch):
    unet = engine.load().denoiser
    real = type(unet).__call__

    def poisoned(self, *args, **kwargs):
        return real(self, *args, **kwargs) * float("nan")

    monkeypatch.setattr(type(unet), "__call__", poisoned)
    with pytest.raises(NonFiniteError, match="became NaN at step 1 of 2"):
        engine.generate(GenerationRequest(**REQUEST))


def test_a_decoder_that_overflows_is_an_error_not_a_black_image(engine, monkeypatch):
    decoder = engine.load().decoder
    real = type(decoder).decode
    monkeypatch.setattr(type(decoder), "decode", lambda self, z: real(self, z) * float("inf"))
    with pytest.raises(NonFiniteError, match="at the decoder"):
        engine.generate(GenerationRequest(**REQUEST))
