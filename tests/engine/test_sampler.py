"""Same components, prompt, seeds, steps, guidance and size → the same latents and pixels as diffusers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lcm_desktop.core.request import GenerationRequest
from lcm_desktop.engine.engine import Engine
from lcm_desktop.engine.loaders import TorchLoader


def _reference(pipe, request, output_type):
    generators = [torch.Generator("cpu").manual_seed(s) for s in request.seeds]
    kwargs = dict(
        prompt=request.prompt, num_inference_steps=request.steps, guidance_scale=request.guidance_scale,
        generator=generators, num_images_per_prompt=request.batch_size, width=request.width,
        height=request.height, output_type=output_type,
    )
    if request.negative_prompt:
        kwargs["negative_prompt"] = request.negative_prompt
    return pipe(**kwargs).images


def _assert_parity(engine, pipe, request):
    finals = []
    result = engine.generate(request, on_step=lambda p: finals.append(p.denoised))
    resolved = result.request
    ref_latents = _reference(pipe, resolved, "latent")
    torch.testing.assert_close(finals[-1], ref_latents, rtol=1e-5, atol=1e-5)
    ref_images = (_reference(pipe, resolved, "np") * 255).round().astype(np.int16)
    ours = np.stack([np.asarray(im) for im in result.images]).astype(np.int16)
    assert ours.shape == ref_images.shape
    assert np.abs(ours - ref_images).max() <= 1
    assert ours.std() > 0  # a real image, not a constant
    return result


@pytest.fixture(scope="module")
def lcm_pair(tiny_lcm):
    from diffusers import LatentConsistencyModelPipeline

    return Engine(tiny_lcm), LatentConsistencyModelPipeline.from_pretrained(tiny_lcm)


@pytest.fixture(scope="module")
def sd_pair(tiny_sd):
    from diffusers import LCMScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    return Engine(tiny_sd), pipe


@pytest.mark.parametrize("steps", [1, 2, 4])
@pytest.mark.parametrize("batch", [1, 2])
def test_guidance_embedding_lcm_matches_diffusers(lcm_pair, steps, batch):
    engine, pipe = lcm_pair
    result = _assert_parity(engine, pipe, GenerationRequest("a red circle", steps=steps, batch_size=batch, seed=7))
    assert result.denoiser_calls == steps


def test_non_square_size_matches_diffusers(lcm_pair):
    engine, pipe = lcm_pair
    result = _assert_parity(engine, pipe, GenerationRequest("a blue square", width=96, height=64, seed=11))
    assert result.images[0].size == (96, 64)


def test_negative_prompt_is_reported_ignored_by_guidance_embedding_models(lcm_pair):
    engine, pipe = lcm_pair
    result = _assert_parity(engine, pipe, GenerationRequest("a cat", negative_prompt="blurry", seed=1, steps=2))
    assert result.negative_prompt_ignored


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_plain_unet_matches_stable_diffusion_pipeline_with_lcm_scheduler(sd_pair, guidance):
    engine, pipe = sd_pair
    request = GenerationRequest("a dog", negative_prompt="ugly", guidance_scale=guidance, steps=4, batch_size=2, seed=5)
    result = _assert_parity(engine, pipe, request)
    # guidance > 1 is classifier-free guidance: still one (two-row) denoiser call per step
    assert result.denoiser_calls == 4
    assert result.negative_prompt_ignored is (guidance <= 1.0)


def test_plain_unet_cfg_batches_two_rows(sd_pair):
    engine, _ = sd_pair
    rows = []
    den = engine.components.denoiser
    original = den.unet.forward

    def spy(sample, *args, **kwargs):
        rows.append(sample.shape[0])
        return original(sample, *args, **kwargs)

    den.unet.forward = spy
    try:
        engine.generate(GenerationRequest("a dog", guidance_scale=2.0, steps=2, seed=0))
        engine.generate(GenerationRequest("a dog", guidance_scale=1.0, steps=2, seed=0))
    finally:
        del den.unet.forward
    assert rows == [2, 2, 1, 1]


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_sdxl_class_matches_sdxl_pipeline(tiny_sdxl, guidance):
    from diffusers import LCMScheduler, StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    _assert_parity(Engine(tiny_sdxl), pipe, GenerationRequest("a horse", guidance_scale=guidance, batch_size=2, seed=3))


def test_sdxl_class_negative_prompt_matches(tiny_sdxl):
    from diffusers import LCMScheduler, StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    request = GenerationRequest("a horse", negative_prompt="blurry", guidance_scale=1.5, steps=2, seed=3)
    result = _assert_parity(Engine(tiny_sdxl), pipe, request)
    assert not result.negative_prompt_ignored


def test_sdxl_guidance_embedding_unet_matches(tiny_sdxl_lcm):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl_lcm)
    result = _assert_parity(Engine(tiny_sdxl_lcm), pipe, GenerationRequest("a castle", guidance_scale=6.0, seed=9))
    assert result.denoiser_calls == 4


def test_guidance_embedding_equals_diffusers():
    from diffusers import LatentConsistencyModelPipeline

    from lcm_desktop.engine.sampler import guidance_embedding

    w = torch.tensor([0.0, 1.5, 7.5])
    for dim in (32, 256, 33):
        expected = LatentConsistencyModelPipeline.get_guidance_scale_embedding(None, w, embedding_dim=dim)
        torch.testing.assert_close(guidance_embedding(w, dim), expected, rtol=0, atol=0)
    # the halves differ (sin, cos): a "sin twice" port would fail here
    emb = guidance_embedding(torch.tensor([7.5]), 256)
    assert not torch.allclose(emb[:, :128], emb[:, 128:])


def test_lcm_lora_fused_base_matches_diffusers(tiny_sd, tmp_path):
    """An SD base with an LCM-LoRA: our load-time fusion equals diffusers' load_lora_weights + fuse_lora."""
    from diffusers import LCMScheduler, StableDiffusionPipeline
    from tiny_models import make_tiny_lora

    lora = make_tiny_lora(tiny_sd, tmp_path / "lora")
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    pipe.load_lora_weights(str(lora))
    pipe.fuse_lora()
    with_lora = _assert_parity(
        Engine(TorchLoader(tiny_sd, lora=lora)), pipe, GenerationRequest("a dog", guidance_scale=1.5, steps=2, seed=4)
    )
    plain = Engine(tiny_sd).generate(GenerationRequest("a dog", guidance_scale=1.5, steps=2, seed=4))
    assert not np.array_equal(np.asarray(plain.images[0]), np.asarray(with_lora.images[0]))


def test_lora_in_the_folder_is_fused_and_a_foreign_lora_is_a_clear_error(tiny_sd, tiny_sdxl, tmp_path):
    import shutil

    from tiny_models import make_tiny_lora

    from lcm_desktop.core.errors import ModelFormatError

    lora = make_tiny_lora(tiny_sd, tmp_path / "lora")
    folder = tmp_path / "base-plus-lora"
    shutil.copytree(tiny_sd, folder)
    (folder / "lcm_lora").mkdir()
    shutil.copy(lora, folder / "lcm_lora" / lora.name)
    request = GenerationRequest("a dog", guidance_scale=1.0, steps=2, seed=4)
    auto = Engine(folder).generate(request)
    explicit = Engine(TorchLoader(tiny_sd, lora=lora)).generate(request)
    assert np.array_equal(np.asarray(auto.images[0]), np.asarray(explicit.images[0]))
    xl_lora = make_tiny_lora(tiny_sdxl, tmp_path / "xl-lora")
    with pytest.raises(ModelFormatError, match="does not fit"):
        Engine(TorchLoader(tiny_sd, lora=xl_lora)).load()
