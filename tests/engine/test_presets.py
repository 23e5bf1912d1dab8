"""Sampler presets give diffusers' pixels: the same components, prompt, seeds and steps with the scheduler
diffusers' documentation uses for each family (TCD with its eta, Hyper-SD 1-step, PCM's DDIM trailing,
Turbo's Euler a trailing at 1 step, Lightning's Euler trailing), text-to-image and image-to-image."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from lcm_desktop.core.errors import InvalidRequestError
from lcm_desktop.core.model_info import describe_model
from lcm_desktop.core.presets import preset_named, schedule_length
from lcm_desktop.core.request import GenerationRequest
from lcm_desktop.engine.engine import Engine


def with_scheduler(source: Path, target: Path, cls_name: str, **overrides) -> Path:
    """A copy of the model folder ``source`` whose scheduler is ``cls_name`` (diffusers' ``from_config``)."""
    import diffusers

    shutil.copytree(source, target)
    config = json.loads((source / "scheduler" / "scheduler_config.json").read_text())
    getattr(diffusers, cls_name).from_config(config, **overrides).save_config(target / "scheduler")
    index = json.loads((target / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", cls_name]
    (target / "model_index.json").write_text(json.dumps(index))
    return target


@pytest.fixture(scope="module")
def tcd_folder(tiny_sd, tmp_path_factory):
    return with_scheduler(tiny_sd, tmp_path_factory.mktemp("tcd") / "tiny-tcd", "TCDScheduler")


@pytest.fixture(scope="module")
def turbo_folder(tiny_sd, tmp_path_factory):
    return with_scheduler(tiny_sd, tmp_path_factory.mktemp("turbo") / "tiny-turbo", "EulerAncestralDiscreteScheduler",
                          timestep_spacing="trailing")


@pytest.fixture(scope="module")
def tcd_engine(tcd_folder):
    return Engine(tcd_folder)


@pytest.fixture(scope="module")
def turbo_engine(turbo_folder):
    return Engine(turbo_folder)


def _pipe(folder: Path, sampler: str | None = None, *, img2img: bool = False, sdxl: bool = False):
    """diffusers' pipeline on the same folder, with the preset's scheduler as diffusers' docs set it."""
    import diffusers

    name = ("StableDiffusionXL" if sdxl else "StableDiffusion") + ("Img2ImgPipeline" if img2img else "Pipeline")
    kwargs = {} if sdxl else {"safety_checker": None}
    pipe = getattr(diffusers, name).from_pretrained(folder, **kwargs)
    if sampler is not None:
        preset = preset_named(sampler)
        pipe.scheduler = getattr(diffusers, preset.scheduler).from_config(pipe.scheduler.config,
                                                                          **preset.config_overrides)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _start_image() -> Image.Image:
    image = Image.new("RGB", (64, 64), (30, 90, 200))
    ImageDraw.Draw(image).ellipse((10, 14, 50, 54), fill=(230, 40, 30))
    return image


def _reference(pipe, request, output_type, image=None):
    kwargs = dict(prompt=request.prompt, guidance_scale=request.guidance_scale, output_type=output_type,
                  generator=[torch.Generator("cpu").manual_seed(s) for s in request.seeds],
                  num_images_per_prompt=request.batch_size)
    if request.eta is not None:
        kwargs["eta"] = request.eta
    if image is None:
        kwargs.update(num_inference_steps=request.steps, width=request.width, height=request.height)
    else:  # diffusers' steps are the schedule's length: the engine's steps are the calls it leaves
        kwargs.update(image=image, strength=request.strength,
                      num_inference_steps=schedule_length(preset_named(request.sampler), request.steps,
                                                          request.strength))
    return pipe(**kwargs).images


def _assert_parity(engine, pipe, request, image=None):
    calls = []
    result = engine.generate(request, on_step=lambda p: calls.append(p.denoised))
    resolved = result.request
    assert result.denoiser_calls == len(calls) == resolved.steps
    torch.testing.assert_close(calls[-1], _reference(pipe, resolved, "latent", image), rtol=1e-5, atol=1e-5)
    ref = (_reference(pipe, resolved, "np", image) * 255).round().astype(np.int16)
    ours = np.stack([np.asarray(im) for im in result.images]).astype(np.int16)
    assert ours.shape == ref.shape and np.abs(ours - ref).max() <= 1
    assert ours.std() > 0
    return result, ours


def test_the_preset_is_read_from_the_folder(tcd_folder, turbo_folder, tiny_sd, tiny_lcm, tmp_path):
    assert describe_model(tcd_folder).preset.name == "tcd"
    turbo = describe_model(turbo_folder)
    assert turbo.preset.name == "euler-a-trailing"
    assert (turbo.defaults.steps, turbo.defaults.guidance_scale) == (1, 0.0)
    assert [p.name for p in turbo.presets] == ["euler-a-trailing", "euler-trailing"]
    # an LCM-LoRA base ships Euler with leading spacing: LCM, as before presets existed
    assert describe_model(tiny_sd).preset.name == "lcm" and describe_model(tiny_lcm).preset.name == "lcm"
    assert [p.name for p in describe_model(tiny_lcm).presets][:2] == ["lcm", "tcd"]
    hyper = shutil.copytree(tcd_folder, tmp_path / "hyper")
    (hyper / "lcm_desktop.json").write_text(json.dumps({"sampler": "hyper-sd"}))
    info = describe_model(hyper)
    assert (info.preset.name, info.defaults.steps) == ("hyper-sd", 1)


@pytest.mark.parametrize("eta", [None, 0.6])
def test_tcd_folder_gives_diffusers_tcd_pixels(tcd_engine, tcd_folder, eta):
    request = GenerationRequest("a red circle", steps=4, seed=11, eta=eta)
    result, ours = _assert_parity(tcd_engine, _pipe(tcd_folder), request)
    assert (result.request.sampler, result.request.eta) == ("tcd", 0.3 if eta is None else 0.6)
    if eta is not None:  # eta really reaches the scheduler: another eta, other pixels
        other = tcd_engine.generate(GenerationRequest("a red circle", steps=4, seed=11))
        assert np.abs(np.asarray(other.images[0]).astype(int) - ours[0]).max() > 5


def test_hyper_sd_one_step_is_tcd_at_eta_one(tcd_engine, tcd_folder):
    request = GenerationRequest("a dog", steps=1, seed=3, sampler="hyper-sd", batch_size=2)
    result, _ = _assert_parity(tcd_engine, _pipe(tcd_folder, "hyper-sd"), request)
    assert result.request.eta == 1.0


def test_pcm_ddim_trailing_matches(tcd_engine, tcd_folder):
    _assert_parity(tcd_engine, _pipe(tcd_folder, "ddim-trailing"),
                   GenerationRequest("a cat", steps=2, seed=5, sampler="pcm"))


def test_turbo_folder_gives_diffusers_one_step_pixels(turbo_engine, turbo_folder):
    result, _ = _assert_parity(turbo_engine, _pipe(turbo_folder), GenerationRequest("a horse", steps=1, seed=2))
    assert (result.request.sampler, result.request.guidance_scale, result.request.eta) == \
        ("euler-a-trailing", 0.0, None)


def test_lightning_euler_trailing_matches(turbo_engine, turbo_folder):
    _assert_parity(turbo_engine, _pipe(turbo_folder, "euler-trailing"),
                   GenerationRequest("a horse", steps=2, seed=2, sampler="lightning"))


@pytest.mark.parametrize(("sampler", "steps", "strength"), [("tcd", 2, 0.5), ("hyper-sd", 1, 0.6),
                                                            ("ddim-trailing", 2, 0.7)])
def test_img2img_with_consistency_presets_matches(tcd_engine, tcd_folder, sampler, steps, strength):
    image = _start_image()
    request = GenerationRequest("a red circle", steps=steps, seed=9, sampler=sampler, init_image=image,
                                strength=strength)
    _assert_parity(tcd_engine, _pipe(tcd_folder, sampler, img2img=True), request, image)


@pytest.mark.parametrize("sampler", ["euler-a-trailing", "euler-trailing"])
def test_img2img_with_turbo_at_one_step_matches(turbo_engine, turbo_folder, sampler):
    image = _start_image()
    request = GenerationRequest("a red circle", steps=1, seed=9, sampler=sampler, init_image=image, strength=0.5)
    _assert_parity(turbo_engine, _pipe(turbo_folder, sampler, img2img=True), request, image)


def test_tcd_on_a_guidance_embedding_lcm_matches(tiny_lcm):
    # TCD runs on a full LCM UNet too: the SD pipeline embeds w = guidance - 1 as the LCM pipeline does
    request = GenerationRequest("a red circle", steps=2, seed=4, sampler="tcd")
    _assert_parity(Engine(tiny_lcm), _pipe(tiny_lcm, "tcd"), request)


def test_sdxl_class_with_tcd_matches(tiny_sdxl, tmp_path):
    folder = with_scheduler(tiny_sdxl, tmp_path / "sdxl-tcd", "TCDScheduler")
    _assert_parity(Engine(folder), _pipe(folder, sdxl=True), GenerationRequest("a horse", steps=2, seed=3))


def test_a_preset_the_model_cannot_run_is_one_clear_line(turbo_engine, tcd_engine):
    with pytest.raises(InvalidRequestError, match=r"sampler.*one of euler-a-trailing, euler-trailing for tiny-turbo"):
        turbo_engine.generate(GenerationRequest("a horse", sampler="tcd"))
    with pytest.raises(InvalidRequestError, match="only TCD samplers take eta"):
        tcd_engine.generate(GenerationRequest("a cat", sampler="lcm", eta=0.5))
    with pytest.raises(InvalidRequestError, match="at most 1 with the euler-a-trailing sampler"):
        turbo_engine.generate(GenerationRequest("a horse", guidance_scale=5.0))
