"""Image-to-image in half precision makes diffusers' latents (issue 25 item 9: fp16 on CUDA was 5.5/255 off).

Two causes, both reproducible on the CPU in float16: the engine ran an SD-class VAE in float32 because its config
says ``force_upcast`` (diffusers' SD-class pipelines never read the flag; ``core.vae_precision``), and it handed
the VAE encoder a contiguous tensor where diffusers' image processor hands it channels-last strides (another
convolution kernel: latents ~1e-3 apart in fp16).
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image, ImageDraw

from lcm_desktop.core.request import GenerationRequest
from lcm_desktop.core.vae_precision import vae_runs_in_fp32
from lcm_desktop.engine.engine import Engine
from lcm_desktop.engine.loaders import TorchLoader


@pytest.fixture(scope="module")
def half(tiny_lcm):
    from diffusers import LatentConsistencyModelImg2ImgPipeline

    pipe = LatentConsistencyModelImg2ImgPipeline.from_pretrained(tiny_lcm, dtype=torch.float16)
    pipe.set_progress_bar_config(disable=True)
    return Engine(TorchLoader(tiny_lcm, device="cpu", dtype="float16")), pipe


def test_an_sd_class_vae_runs_in_the_models_dtype_as_diffusers_sdxl_upcasts():
    assert not vae_runs_in_fp32("sd", {"force_upcast": True})
    assert vae_runs_in_fp32("sdxl", {"force_upcast": True}) and vae_runs_in_fp32("sdxl", {})
    assert not vae_runs_in_fp32("sdxl", {"force_upcast": False})


@pytest.mark.parametrize("batch", [1, 2])
def test_half_precision_img2img_makes_diffusers_latents(half, batch):
    engine, pipe = half
    assert engine.load().decoder.dtype == pipe.vae.dtype == torch.float16
    image = Image.new("RGB", (64, 64), (30, 90, 200))
    ImageDraw.Draw(image).ellipse((10, 14, 50, 54), fill=(230, 40, 30))
    finals = []
    result = engine.generate(GenerationRequest("a red circle", steps=2, seed=5, batch_size=batch, init_image=image,
                                               strength=0.5), on_step=lambda p: finals.append(p.denoised))
    generators = [torch.Generator("cpu").manual_seed(s) for s in result.request.seeds]
    ref = pipe(prompt="a red circle", image=image, strength=0.5, num_inference_steps=2,
               guidance_scale=result.request.guidance_scale, generator=generators, num_images_per_prompt=batch,
               output_type="latent").images
    assert finals[-1].dtype == torch.float16
    assert torch.equal(finals[-1], ref)  # bit for bit (before: the VAE in fp32 and another conv kernel)
