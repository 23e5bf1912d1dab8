"""Image-to-image: the same components, seeds, prompt, strength and steps → the pixels of diffusers'
``LatentConsistencyModelImg2ImgPipeline``; strength shortens the schedule, it never drops steps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from lcm_desktop.core.errors import InvalidRequestError
from lcm_desktop.core.request import GenerationRequest
from lcm_desktop.engine.engine import Engine


def _start_image(size=(64, 64)) -> Image.Image:
    image = Image.new("RGB", size, (30, 90, 200))
    ImageDraw.Draw(image).ellipse((10, 14, 50, 54), fill=(230, 40, 30))
    return image


@pytest.fixture(scope="module")
def lcm_img2img(tiny_lcm):
    from diffusers import LatentConsistencyModelImg2ImgPipeline

    pipe = LatentConsistencyModelImg2ImgPipeline.from_pretrained(tiny_lcm, safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    return Engine(tiny_lcm), pipe


def _reference(pipe, request, image, output_type):
    generators = [torch.Generator("cpu").manual_seed(s) for s in request.seeds]
    return pipe(prompt=request.prompt, image=image, strength=request.strength, num_inference_steps=request.steps,
                guidance_scale=request.guidance_scale, generator=generators,
                num_images_per_prompt=request.batch_size, output_type=output_type).images


@pytest.mark.parametrize(("strength", "steps", "batch"), [(0.5, 2, 2), (0.5, 4, 1), (1.0, 4, 1)])
def test_matches_diffusers_lcm_img2img_pipeline(lcm_img2img, strength, steps, batch):
    engine, pipe = lcm_img2img
    image = _start_image()
    finals = []
    result = engine.generate(GenerationRequest("a red circle", steps=steps, seed=7, batch_size=batch,
                                               init_image=image, strength=strength),
                             on_step=lambda p: finals.append(p.denoised))
    assert result.denoiser_calls == steps
    req = result.request
    torch.testing.assert_close(finals[-1], _reference(pipe, req, image, "latent"), rtol=1e-5, atol=1e-5)
    ref = (_reference(pipe, req, image, "np") * 255).round().astype(np.int16)
    ours = np.stack([np.asarray(im) for im in result.images]).astype(np.int16)
    assert ours.shape == ref.shape and np.abs(ours - ref).max() <= 1
    assert ours.std() > 0
    if batch > 1:
        assert not np.array_equal(ours[0], ours[1])  # seed + i: each image its own VAE sample and noise


def test_the_starting_image_matters_and_strength_too(lcm_img2img):
    engine, _ = lcm_img2img

    def make(image, strength):
        request = GenerationRequest("a red circle", steps=2, seed=3, init_image=image, strength=strength)
        return np.asarray(engine.generate(request).images[0]).astype(np.int16)

    red, green = _start_image(), Image.new("RGB", (64, 64), (20, 200, 40))
    kept = make(red, 0.3)
    assert np.abs(kept - make(green, 0.3)).mean() > 0.5
    assert np.abs(kept - make(red, 0.9)).mean() > 0.5


TABLE = {1.0: [999, 759, 499, 259], 0.5: [499, 379, 259, 139], 0.3: [299, 239, 159, 79]}


@pytest.mark.parametrize("strength", sorted(TABLE))
def test_strength_to_timesteps_table_with_four_steps(lcm_img2img, strength):
    from diffusers import LCMScheduler

    scheduler = LCMScheduler.from_config(lcm_img2img[0].components.scheduler_config)
    scheduler.set_timesteps(4, strength=strength)
    assert scheduler.timesteps.tolist() == TABLE[strength]


def test_the_denoiser_sees_the_shortened_schedule(lcm_img2img):
    engine, _ = lcm_img2img
    seen = []
    den = engine.components.denoiser
    original = den.unet.forward

    def spy(sample, timestep, *args, **kwargs):
        seen.append(int(timestep))
        return original(sample, timestep, *args, **kwargs)

    den.unet.forward = spy
    try:
        engine.generate(GenerationRequest("a cat", steps=4, seed=1, init_image=_start_image(), strength=0.3))
    finally:
        del den.unet.forward
    assert seen == TABLE[0.3]  # 4 denoiser calls at strength 0.3, not int(4 × 0.3) = 1


@pytest.mark.parametrize(("steps", "strength", "words"), [
    (4, 0.05, "at least 0.08 with 4 steps (or at most 2 steps at this strength)"),
    (4, 0.01, "at least 0.08 with 4 steps, got 0.01"),
    (29, 0.58, "at least 0.581 with 29 steps"),
])
def test_too_few_schedule_points_is_one_clear_error(lcm_img2img, steps, strength, words):
    engine, _ = lcm_img2img
    calls = engine.components.denoiser.calls
    with pytest.raises(InvalidRequestError, match="strength") as err:
        engine.generate(GenerationRequest("a cat", steps=steps, seed=1, init_image=_start_image(), strength=strength))
    assert words in str(err.value)
    assert engine.components.denoiser.calls == calls  # refused before any denoising


def test_starting_image_of_another_size_is_fitted(lcm_img2img, tmp_path):
    engine, _ = lcm_img2img
    path = tmp_path / "wide.png"
    _start_image((300, 120)).save(path)
    result = engine.generate(GenerationRequest("a cat", steps=2, seed=1, init_image=path, strength=0.6,
                                               width=96, height=64))
    assert result.images[0].size == (96, 64)
    assert result.request.init_image == path


def test_image_encoder_samples_with_the_generators(lcm_img2img):
    engine, _ = lcm_img2img
    encoder = engine.components.image_encoder
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    sampled = encoder.encode(image, gens)
    again = encoder.encode(image, [torch.Generator().manual_seed(1)])
    mode = encoder.encode(image)
    assert sampled.shape == (2, 4, 8, 8) and mode.shape == (1, 4, 8, 8)
    torch.testing.assert_close(sampled[:1], again)
    assert not torch.allclose(sampled[0], sampled[1]) and not torch.allclose(sampled[:1], mode)


def _cfg_reference(pipe, seed, strength, steps, cond, uncond, guidance, added=None) -> np.ndarray:
    """The img2img image assembled from diffusers' own calls: LCMScheduler.set_timesteps(strength=…), the VAE
    posterior sampled with the generator, add_noise at the first timestep, then CFG UNet + scheduler steps."""
    from diffusers import LCMScheduler
    from diffusers.utils.torch_utils import randn_tensor

    gen = torch.Generator().manual_seed(seed)
    scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    scheduler.set_timesteps(steps, strength=strength)
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(_start_image(), dtype=np.float32) / 255).permute(2, 0, 1)[None] * 2 - 1
        latents = pipe.vae.encode(x).latent_dist.sample(gen) * pipe.vae.config.scaling_factor
        latents = scheduler.add_noise(latents, randn_tensor(latents.shape, generator=gen), scheduler.timesteps[:1])
        for t in scheduler.timesteps:
            pred = pipe.unet(torch.cat([latents] * 2), t, encoder_hidden_states=torch.cat([uncond, cond]),
                             added_cond_kwargs=added).sample
            u, c = pred.chunk(2)
            latents, denoised = scheduler.step(u + guidance * (c - u), t, latents, generator=gen, return_dict=False)
        ref = pipe.vae.decode(denoised / pipe.vae.config.scaling_factor).sample
    return ((ref / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.int16)


def test_plain_unet_with_cfg_matches_a_reference_from_diffusers_calls(tiny_sd):
    """LCM-LoRA-style plain UNet, guidance 2 (classifier-free guidance): the same strength semantics."""
    from diffusers import StableDiffusionPipeline

    engine = Engine(tiny_sd)
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd, safety_checker=None)
    request = GenerationRequest("a dog", negative_prompt="ugly", guidance_scale=2.0, steps=2, seed=5,
                                init_image=_start_image(), strength=0.6)
    result = engine.generate(request)
    with torch.no_grad():
        cond, uncond = pipe.encode_prompt("a dog", "cpu", 1, True, "ugly")
    ref = _cfg_reference(pipe, 5, 0.6, 2, cond, uncond, 2.0)
    assert np.abs(np.asarray(result.images[0]).astype(np.int16) - ref).max() <= 1
    assert result.denoiser_calls == 2


def test_tiny_autoencoder_encodes_the_start_on_the_fast_path(tiny_lcm, tiny_taesd):
    from lcm_desktop.engine.loaders import TorchLoader

    engine = Engine(TorchLoader(tiny_lcm, tiny_decoder=tiny_taesd))
    comps = engine.components
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    tiny = comps.tiny_image_encoder.encode(image, gens)
    with torch.no_grad():
        direct = comps.tiny_decoder.vae.encode(image).latents
    assert tiny.shape == (2, 4, 8, 8)
    torch.testing.assert_close(tiny, direct.expand(2, -1, -1, -1))  # no posterior: the same for every seed
    used = []
    for encoder in (comps.image_encoder, comps.tiny_image_encoder):
        original = encoder.encode
        encoder.encode = lambda *a, _o=original, _e=encoder, **k: used.append(_e) or _o(*a, **k)
    request = GenerationRequest("a cat", steps=2, seed=1, init_image=_start_image(), strength=0.5)
    fast = engine.generate(replace(request, tiny_decoder=True))
    full = engine.generate(request)
    assert used == [comps.tiny_image_encoder, comps.image_encoder]
    assert fast.images[0].size == (64, 64) and not np.array_equal(np.asarray(fast.images[0]),
                                                                   np.asarray(full.images[0]))


def test_a_model_without_an_image_encoder_says_convert_again(tiny_lcm):
    from lcm_desktop.core.errors import ModelFormatError

    engine = Engine(tiny_lcm)
    engine.components.image_encoder = None
    with pytest.raises(ModelFormatError, match="converted without an image encoder; convert it again"):
        engine.generate(GenerationRequest("a cat", steps=2, seed=1, init_image=_start_image(), strength=0.5))


def test_sdxl_class_with_cfg_matches_a_reference_from_diffusers_calls(tiny_sdxl):
    """SDXL-class (two text encoders, size conditioning) with classifier-free guidance: the same strength
    semantics, checked against diffusers' own scheduler, VAE and UNet calls."""
    from diffusers import LCMScheduler, StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    result = Engine(tiny_sdxl).generate(GenerationRequest("a horse", guidance_scale=2.0, steps=2, seed=3,
                                                          width=64, height=64, init_image=_start_image(),
                                                          strength=0.7))
    scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    scheduler.set_timesteps(2, strength=0.7)
    assert scheduler.timesteps.tolist() == [699, 359]
    with torch.no_grad():
        cond, uncond, pooled, uncond_pooled = pipe.encode_prompt(
            "a horse", device=torch.device("cpu"), num_images_per_prompt=1, do_classifier_free_guidance=True)
    added = {"text_embeds": torch.cat([uncond_pooled, pooled]),
             "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]]).repeat(2, 1)}
    ref = _cfg_reference(pipe, 3, 0.7, 2, cond, uncond, 2.0, added)
    assert np.abs(np.asarray(result.images[0]).astype(np.int16) - ref).max() <= 1
    assert result.denoiser_calls == 2
