"""Inpainting: the same components, seed, prompt, picture and mask at strength 1 → diffusers'
``StableDiffusionInpaintPipeline`` with ``LCMScheduler`` followed by its ``apply_overlay``; 4- and 9-channel UNets,
w-embedding LCMs and plain UNets with CFG; outside the mask nothing changes; "only masked" and outpainting."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_models
import torch
from PIL import Image, ImageDraw

from lcm_desktop.core.errors import InvalidRequestError
from lcm_desktop.core.mask import Inpaint, InpaintArea, Outpaint
from lcm_desktop.core.request import GenerationRequest
from lcm_desktop.engine.engine import Engine


def _picture(size=(64, 64)) -> Image.Image:
    image = Image.new("RGB", size, (30, 90, 200))
    ImageDraw.Draw(image).ellipse((size[0] // 6, size[1] // 5, size[0] * 5 // 6, size[1] * 5 // 6), fill=(230, 40, 30))
    return image


def _mask(size=(64, 64), box=(32, 0, 64, 32)) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=255)
    return mask


@pytest.fixture(scope="module")
def models(tiny_lcm, tiny_sd, tmp_path_factory):
    root = tmp_path_factory.mktemp("inpaint")
    return {
        "lcm4": tiny_lcm,
        "plain4": tiny_sd,
        "lcm9": tiny_models.make_tiny_sd(root / "lcm9", in_channels=9, seed=1),
        "plain9": tiny_models.make_tiny_sd(root / "plain9", time_cond_proj_dim=None, in_channels=9, seed=2),
    }


_ENGINES: dict = {}


def _engine(path) -> Engine:
    if path not in _ENGINES:
        _ENGINES[path] = Engine(path)
    return _ENGINES[path]


pytestmark = pytest.mark.filterwarnings("ignore:The configuration file of this scheduler:FutureWarning")


def _reference(path, request, image, mask):
    from diffusers import LCMScheduler, StableDiffusionInpaintPipeline

    pipe = StableDiffusionInpaintPipeline.from_pretrained(path, safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt=request.prompt, negative_prompt=request.negative_prompt or None, image=image, mask_image=mask,
               strength=1.0, num_inference_steps=request.steps, guidance_scale=request.guidance_scale,
               generator=[torch.Generator("cpu").manual_seed(request.seed)], height=request.height,
               width=request.width).images[0]
    return pipe.image_processor.apply_overlay(mask, image, out)


@pytest.mark.parametrize(("kind", "guidance", "negative"), [
    ("lcm4", 8.5, ""), ("plain4", 2.0, "blurry"), ("lcm9", 8.5, ""), ("plain9", 2.0, "blurry"),
])
def test_matches_diffusers_inpaint_pipeline_with_overlay(models, kind, guidance, negative):
    from diffusers.image_processor import VaeImageProcessor

    image = _picture()
    blurred = VaeImageProcessor.blur(_mask(), 4)
    engine = _engine(models[kind])
    request = GenerationRequest("a red circle", negative_prompt=negative, steps=3, seed=11, guidance_scale=guidance,
                                init_image=image, strength=1.0, inpaint=Inpaint(mask=_mask(), blur=4))
    ours = np.asarray(engine.generate(request).images[0]).astype(np.int16)
    ref = np.asarray(_reference(models[kind], engine.resolve(request), image, blurred)).astype(np.int16)
    assert np.abs(ours - ref).max() <= 1
    kept = np.asarray(blurred) == 0
    assert np.array_equal(ours[kept], np.asarray(image).astype(np.int16)[kept])  # outside the mask: the original
    assert np.abs(ours[~kept] - np.asarray(image)[~kept]).mean() > 5  # inside: repainted


def test_keep_generated_and_all_white_and_all_black(models):
    engine = _engine(models["lcm4"])
    image = _picture()
    raw = engine.generate(GenerationRequest("a cat", steps=2, seed=3, init_image=image, strength=1.0,
                                            inpaint=Inpaint(mask=_mask(), blur=0, keep_generated=True))).images[0]
    kept = ~(np.asarray(_mask()) > 0)
    assert not np.array_equal(np.asarray(raw)[kept], np.asarray(image)[kept])  # the model's own pixels there
    white = Image.new("L", (64, 64), 255)
    masked = engine.generate(GenerationRequest("a cat", steps=2, seed=3, init_image=image, strength=0.6,
                                               inpaint=Inpaint(mask=white))).images[0]
    plain = engine.generate(GenerationRequest("a cat", steps=2, seed=3, init_image=image, strength=0.6)).images[0]
    assert np.array_equal(np.asarray(masked), np.asarray(plain))  # all white: plain image-to-image
    calls = engine.components.denoiser.calls
    with pytest.raises(InvalidRequestError, match="`mask` must be white where the picture should change"):
        engine.generate(GenerationRequest("a cat", steps=2, seed=3, init_image=image,
                                          inpaint=Inpaint(mask=Image.new("RGB", (10, 10)))))
    assert engine.components.denoiser.calls == calls


def test_below_strength_one_keeps_the_outside_and_uses_the_img2img_schedule(models):
    engine = _engine(models["lcm4"])
    seen = []
    den = engine.components.denoiser
    original = den.unet.forward

    def spy(sample, timestep, *args, **kwargs):
        seen.append(int(timestep))
        return original(sample, timestep, *args, **kwargs)

    den.unet.forward = spy
    try:
        image = _picture()
        out = engine.generate(GenerationRequest("a cat", steps=4, seed=1, init_image=image, strength=0.3,
                                                inpaint=Inpaint(mask=_mask(), blur=0))).images[0]
    finally:
        del den.unet.forward
    assert seen == [299, 239, 159, 79]  # the LCM image-to-image schedule at strength 0.3
    kept = np.asarray(_mask()) == 0
    assert np.array_equal(np.asarray(out)[kept], np.asarray(image)[kept])


def test_batch_image_i_is_the_single_image_of_seed_plus_i(models):
    engine = _engine(models["lcm9"])
    kw = dict(steps=2, init_image=_picture(), inpaint=Inpaint(mask=_mask()))
    batch = engine.generate(GenerationRequest("a cat", seed=5, batch_size=2, **kw)).images
    single = engine.generate(GenerationRequest("a cat", seed=6, **kw)).images[0]
    assert np.array_equal(np.asarray(batch[1]), np.asarray(single))


def test_inpainting_unet_makes_text_to_image_with_an_all_white_mask(models):
    engine = _engine(models["lcm9"])
    result = engine.generate(GenerationRequest("a cat", steps=2, seed=5))
    assert result.images[0].size == (64, 64) and np.asarray(result.images[0]).std() > 0


def test_only_masked_changes_only_the_box_on_a_large_picture(models):
    engine = _engine(models["lcm4"])
    picture = _picture((1024, 1024))
    mask = _mask((1024, 1024), (600, 200, 664, 264))
    calls = []
    request = GenerationRequest("a cat", steps=2, seed=2, init_image=picture, inpaint=Inpaint(
        mask=mask, blur=0, area=InpaintArea.MASKED, padding=32, keep_generated=True))
    result = engine.generate(request, on_step=lambda p: calls.append(tuple(p.denoised.shape)))
    out = np.asarray(result.images[0])
    assert out.shape == (1024, 1024, 3)
    assert calls[0][-2:] == (8, 8)  # generated at the model's native 64², not 1024²
    changed = np.argwhere(np.any(out != np.asarray(picture), axis=2))
    (y0, x0), (y1, x1) = changed.min(0), changed.max(0)
    assert 568 <= x0 and x1 < 696 and 168 <= y0 and y1 < 296  # inside the padded box (600-32 … 664+32)
    assert x1 - x0 > 64  # the whole box was repainted (keep_generated), not only the mask
    overlaid = engine.generate(GenerationRequest("a cat", steps=2, seed=2, init_image=picture, inpaint=Inpaint(
        mask=mask, blur=0, area=InpaintArea.MASKED, padding=32))).images[0]
    kept = np.asarray(mask) == 0
    assert np.array_equal(np.asarray(overlaid)[kept], np.asarray(picture)[kept])


def test_outpainting_extends_the_canvas_and_keeps_the_picture(models):
    engine = _engine(models["lcm4"])
    picture = _picture((64, 56))
    result = engine.generate(GenerationRequest("a cat", steps=2, seed=4, init_image=picture, inpaint=Inpaint(
        outpaint=Outpaint(left=16, top=8), blur=0)))
    out = np.asarray(result.images[0])
    assert out.shape == (64, 80, 3) and (result.request.width, result.request.height) == (80, 64)
    assert np.array_equal(out[8:, 16:], np.asarray(picture))
    edge = np.asarray(picture)[:1].astype(int)  # the fill's base colour above the picture
    assert np.abs(out[:8, 16:].astype(int) - edge).mean() > 10  # the border was painted by the model


def test_an_outpainted_canvas_too_small_or_too_large_is_one_clear_line(models):
    engine = _engine(models["lcm4"])
    with pytest.raises(InvalidRequestError, match="`height` must be from 64"):
        engine.generate(GenerationRequest("a cat", steps=2, seed=4, init_image=_picture((64, 48)),
                                          inpaint=Inpaint(outpaint=Outpaint(top=8))))
    with pytest.raises(InvalidRequestError, match="a canvas of at most 2048 px a side"):
        engine.generate(GenerationRequest("a cat", steps=2, seed=4, init_image=_picture((2000, 64)),
                                          inpaint=Inpaint(outpaint=Outpaint(right=64))))


@pytest.mark.parametrize("fixture", ["tiny_sdxl", "tiny_sdxl_lcm"])
def test_matches_diffusers_sdxl_inpaint_pipeline(request, fixture):
    from diffusers import LCMScheduler, StableDiffusionXLInpaintPipeline
    from diffusers.image_processor import VaeImageProcessor

    path = request.getfixturevalue(fixture)
    image, blurred = _picture(), VaeImageProcessor.blur(_mask(), 4)
    engine = _engine(path)
    req = engine.resolve(GenerationRequest("a red circle", negative_prompt="blurry", steps=2, seed=11,
                                           guidance_scale=2.0, init_image=image, inpaint=Inpaint(mask=_mask())))
    ours = np.asarray(engine.generate(req).images[0]).astype(np.int16)
    pipe = StableDiffusionXLInpaintPipeline.from_pretrained(path)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt=req.prompt, negative_prompt=req.negative_prompt, image=image, mask_image=blurred, strength=1.0,
               num_inference_steps=req.steps, guidance_scale=req.guidance_scale, height=64, width=64,
               generator=[torch.Generator("cpu").manual_seed(req.seed)]).images[0]
    ref = np.asarray(pipe.image_processor.apply_overlay(blurred, image, out)).astype(np.int16)
    assert np.abs(ours - ref).max() <= 1
    kept = np.asarray(blurred) == 0
    assert np.array_equal(ours[kept], np.asarray(image).astype(np.int16)[kept])


@pytest.mark.filterwarnings("ignore:The configuration file of this scheduler:FutureWarning")
def test_an_lcm_lora_fits_a_nine_channel_unet_and_matches_diffusers(models, tmp_path):
    pytest.importorskip("peft", reason="diffusers' LoRA loading needs peft")
    from diffusers import LCMScheduler, StableDiffusionInpaintPipeline
    from diffusers.image_processor import VaeImageProcessor

    from lcm_desktop.engine.loaders import TorchLoader

    lora = tiny_models.make_tiny_lora(models["plain9"], tmp_path / "lora")
    engine = Engine(TorchLoader(models["plain9"], lora=lora))
    image, blurred = _picture(), VaeImageProcessor.blur(_mask(), 4)
    req = engine.resolve(GenerationRequest("a red circle", steps=2, seed=3, guidance_scale=1.0, init_image=image,
                                           inpaint=Inpaint(mask=_mask())))
    ours = np.asarray(engine.generate(req).images[0]).astype(np.int16)
    pipe = StableDiffusionInpaintPipeline.from_pretrained(models["plain9"], safety_checker=None,
                                                          requires_safety_checker=False)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(lora))
    pipe.fuse_lora()
    out = pipe(prompt=req.prompt, image=image, mask_image=blurred, strength=1.0, num_inference_steps=2,
               guidance_scale=1.0, generator=[torch.Generator("cpu").manual_seed(3)], height=64, width=64).images[0]
    ref = np.asarray(pipe.image_processor.apply_overlay(blurred, image, out)).astype(np.int16)
    assert np.abs(ours - ref).max() <= 1
    plain = np.asarray(_engine(models["plain9"]).generate(req).images[0]).astype(np.int16)
    assert np.abs(ours - plain).max() > 0  # the LoRA changed the repainted region


def test_the_live_path_with_the_tiny_autoencoder_keeps_the_outside(tiny_lcm, tiny_taesd):
    from lcm_desktop.engine.loaders import TorchLoader

    engine = Engine(TorchLoader(tiny_lcm, tiny_decoder=tiny_taesd))
    image = _picture()
    previews = []
    out = engine.generate(GenerationRequest("a cat", steps=2, seed=1, init_image=image, tiny_decoder=True,
                                            inpaint=Inpaint(mask=_mask(), blur=0)),
                          on_step=lambda p: previews.append(p.denoised)).images[0]
    kept = np.asarray(_mask()) == 0
    assert np.array_equal(np.asarray(out)[kept], np.asarray(image)[kept])
    assert len(previews) == 2 and tuple(previews[-1].shape) == (1, 4, 8, 8)


def test_outpainting_with_a_mask_repaints_both(models):
    engine = _engine(models["lcm4"])
    picture = _picture((64, 64))
    inner = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(inner).rectangle((40, 40, 63, 63), fill=255)
    out = np.asarray(engine.generate(GenerationRequest("a cat", steps=2, seed=4, init_image=picture, inpaint=Inpaint(
        mask=inner, outpaint=Outpaint(left=16), blur=0))).images[0])
    assert out.shape == (64, 80, 3)
    inside = out[:, 16:]
    assert np.array_equal(inside[:40, :40], np.asarray(picture)[:40, :40])  # kept: neither border nor mask
    assert not np.array_equal(inside[40:, 40:], np.asarray(picture)[40:, 40:])  # the user's mask: repainted
