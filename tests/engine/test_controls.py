"""Structure controls: the same components, seed, prompt, control image and scale → the pixels of diffusers'
``StableDiffusionControlNetPipeline`` / ``StableDiffusionAdapterPipeline`` with ``LCMScheduler`` (a guidance-
embedding LCM, and a plain UNet with classifier-free guidance and a negative prompt)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from tiny_controls import make_tiny_adapter, make_tiny_controlnet

from lcm_desktop.core.control import ControlSpec
from lcm_desktop.core.errors import InvalidRequestError, ModelFormatError
from lcm_desktop.core.request import GenerationRequest
from lcm_desktop.engine.engine import Engine


def _ring(size: int = 64, box=(12, 16, 44, 48)) -> Image.Image:
    image = Image.new("RGB", (size, size), (0, 0, 0))
    ImageDraw.Draw(image).ellipse(box, outline=(255, 255, 255), width=3)
    return image


@pytest.fixture(scope="module")
def controls(tmp_path_factory, tiny_lcm, tiny_sd):
    root = tmp_path_factory.mktemp("controls")
    return {
        "lcm-controlnet": make_tiny_controlnet(tiny_lcm, root / "lcm-controlnet"),
        "lcm-adapter": make_tiny_adapter(tiny_lcm, root / "lcm-adapter"),
        "sd-controlnet": make_tiny_controlnet(tiny_sd, root / "sd-controlnet"),
        "sd-adapter": make_tiny_adapter(tiny_sd, root / "sd-adapter"),
        "misfit": make_tiny_controlnet(tiny_lcm, root / "misfit", cross_attention_dim=64),
    }


@pytest.fixture(scope="module")
def engines(tiny_lcm, tiny_sd):
    return {"lcm": Engine(tiny_lcm), "sd": Engine(tiny_sd)}


def _pipeline(engine: Engine, control: str, folder):
    """diffusers' pipeline around the engine's own modules, with LCMScheduler from the model's config."""
    from diffusers import (
        ControlNetModel,
        LCMScheduler,
        StableDiffusionAdapterPipeline,
        StableDiffusionControlNetPipeline,
        T2IAdapter,
    )

    comps = engine.components
    tokenizer, text_encoder = comps.text_encoder.pairs[0]
    parts = dict(vae=comps.decoder.vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=comps.denoiser.unet,
                 scheduler=LCMScheduler.from_config(comps.scheduler_config), safety_checker=None,
                 feature_extractor=None, requires_safety_checker=False)
    if control == "controlnet":
        pipe = StableDiffusionControlNetPipeline(controlnet=ControlNetModel.from_pretrained(folder), **parts)
    else:
        pipe = StableDiffusionAdapterPipeline(adapter=T2IAdapter.from_pretrained(folder), **parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _reference(pipe, control: str, request: GenerationRequest, image, spec: ControlSpec) -> np.ndarray:
    gens = [torch.Generator().manual_seed(s) for s in request.seeds]
    kwargs = dict(prompt=request.prompt, negative_prompt=request.negative_prompt or None, image=image,
                  num_inference_steps=request.steps, guidance_scale=request.guidance_scale, generator=gens,
                  num_images_per_prompt=request.batch_size, height=64, width=64, output_type="np")
    if control == "controlnet":
        kwargs.update(controlnet_conditioning_scale=spec.scale, control_guidance_start=spec.start,
                      control_guidance_end=spec.end)
    else:
        kwargs.update(adapter_conditioning_scale=spec.scale)
    return (pipe(**kwargs).images * 255).round().astype(np.int16)


CASES = [  # (base, control, guidance, negative, scale, start, end, batch)
    ("lcm", "controlnet", 8.5, "", 1.0, 0.0, 1.0, 2),
    ("lcm", "controlnet", 6.0, "", 0.7, 0.0, 0.5, 1),
    ("sd", "controlnet", 2.0, "ugly", 1.3, 0.25, 1.0, 1),
    ("lcm", "adapter", 8.5, "", 1.0, 0.0, 1.0, 2),
    ("sd", "adapter", 2.0, "ugly", 0.8, 0.0, 1.0, 1),
]


@pytest.mark.parametrize(("base", "control", "guidance", "negative", "scale", "start", "end", "batch"), CASES)
def test_matches_diffusers_control_pipelines(engines, controls, base, control, guidance, negative, scale, start,
                                             end, batch):
    engine, folder = engines[base], controls[f"{base}-{control}"]
    image = _ring()
    spec = ControlSpec(image, folder, scale=scale, start=start, end=end)
    request = GenerationRequest("a red circle", negative_prompt=negative, guidance_scale=guidance, steps=4, seed=11,
                                batch_size=batch, controls=(spec,))
    result = engine.generate(request)
    ours = np.stack([np.asarray(im) for im in result.images]).astype(np.int16)
    ref = _reference(_pipeline(engine, control, folder), control, result.request, image, spec)
    assert ours.shape == ref.shape == (batch, 64, 64, 3)
    assert np.abs(ours - ref).max() <= 1
    plain = np.asarray(engine.generate(GenerationRequest("a red circle", negative_prompt=negative, seed=11,
                                                         guidance_scale=guidance, steps=4)).images[0])
    assert np.abs(ours[0] - plain.astype(np.int16)).mean() > 1.0  # the control changed the picture


def test_controlnet_runs_only_on_the_steps_between_start_and_end(engines, controls, monkeypatch):
    from lcm_desktop.engine import controls as controls_module

    calls = []
    real = controls_module.RequestControls.residuals

    def spy(self, step, steps, *args, **kwargs):
        out = real(self, step, steps, *args, **kwargs)
        calls.append((step, out is not None))
        return out

    monkeypatch.setattr(controls_module.RequestControls, "residuals", spy)
    spec = ControlSpec(_ring(), controls["lcm-controlnet"], start=0.25, end=0.75)
    engines["lcm"].generate(GenerationRequest("a dog", steps=4, seed=1, controls=(spec,)))
    assert calls == [(0, False), (1, True), (2, True), (3, False)]


def test_image_to_image_takes_controls_and_scale_zero_is_no_control(engines, controls):
    engine = engines["lcm"]
    start = Image.new("RGB", (64, 64), (30, 90, 200))

    def run(*specs):
        request = GenerationRequest("a red circle", steps=2, seed=3, init_image=start, strength=0.6, controls=specs)
        result = engine.generate(request)
        assert result.denoiser_calls == 2
        return np.asarray(result.images[0]).astype(np.int16)

    bare = run()
    assert np.array_equal(run(ControlSpec(_ring(), controls["lcm-controlnet"], scale=0.0)), bare)
    assert np.abs(run(ControlSpec(_ring(), controls["lcm-controlnet"])) - bare).mean() > 1.0
    assert np.abs(run(ControlSpec(_ring(), controls["lcm-adapter"])) - bare).mean() > 1.0


def test_two_controls_sum_and_the_image_is_fitted_like_a_start_image(engines, controls, tmp_path):
    engine = engines["lcm"]
    wide = tmp_path / "wide.png"
    _ring(128).resize((192, 128)).save(wide)  # 3:2 → covered and centre-cropped to 64×64
    both = (ControlSpec(wide, controls["lcm-controlnet"]), ControlSpec(_ring(), controls["lcm-adapter"]))
    result = engine.generate(GenerationRequest("a dog", steps=2, seed=2, controls=both))
    one = engine.generate(GenerationRequest("a dog", steps=2, seed=2, controls=both[:1]))
    assert result.images[0].size == (64, 64)
    assert not np.array_equal(np.asarray(result.images[0]), np.asarray(one.images[0]))


def test_a_control_that_does_not_fit_the_base_is_one_line(engines, controls):
    spec = ControlSpec(_ring(), controls["misfit"])
    with pytest.raises(ModelFormatError) as info:
        engines["lcm"].generate(GenerationRequest("a dog", steps=1, seed=1, controls=(spec,)))
    message = str(info.value)
    assert "\n" not in message and "misfit" in message and "cross-attention 64" in message


def test_a_control_image_that_is_not_an_image_is_one_line(engines, controls, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    spec = ControlSpec(bad, controls["lcm-controlnet"])
    with pytest.raises(InvalidRequestError) as info:
        engines["lcm"].generate(GenerationRequest("a dog", steps=1, seed=1, controls=(spec,)))
    assert info.value.field == "control image" and "notes.png" in str(info.value) and "\n" not in str(info.value)


def test_sdxl_controlnet_matches_diffusers_xl_pipeline(tmp_path, tiny_sdxl):
    """SDXL-class plain UNet with CFG: the ControlNet gets the UNet's size conditioning too."""
    from diffusers import ControlNetModel, LCMScheduler, StableDiffusionXLControlNetPipeline

    folder = make_tiny_controlnet(tiny_sdxl, tmp_path / "xl-controlnet")
    engine = Engine(tiny_sdxl)
    spec = ControlSpec(_ring(), folder, scale=0.9)
    result = engine.generate(GenerationRequest("a red circle", negative_prompt="ugly", guidance_scale=2.0, steps=2,
                                               seed=4, controls=(spec,)))
    comps = engine.components
    (tok, te), (tok2, te2) = comps.text_encoder.pairs
    pipe = StableDiffusionXLControlNetPipeline(
        vae=comps.decoder.vae, text_encoder=te, text_encoder_2=te2, tokenizer=tok, tokenizer_2=tok2,
        unet=comps.denoiser.unet, controlnet=ControlNetModel.from_pretrained(folder),
        scheduler=LCMScheduler.from_config(comps.scheduler_config))
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(prompt="a red circle", negative_prompt="ugly", image=_ring(), guidance_scale=2.0,
               num_inference_steps=2, generator=[torch.Generator().manual_seed(4)], height=64, width=64,
               controlnet_conditioning_scale=0.9, output_type="np").images
    ours = np.asarray(result.images[0]).astype(np.int16)
    assert np.abs(ours - (ref[0] * 255).round().astype(np.int16)).max() <= 1


def test_components_without_controls_refuse_them_in_one_line(tiny_lcm, controls):
    """Core ML components take no controls (yet): the request is refused before any step runs."""
    from lcm_desktop.engine.torch_backend import load_torch_components

    comps = load_torch_components(tiny_lcm)
    comps.controls = None
    engine = Engine.from_components(comps)
    spec = ControlSpec(_ring(), controls["lcm-controlnet"])
    with pytest.raises(InvalidRequestError) as info:
        engine.generate(GenerationRequest("a dog", steps=1, seed=1, controls=(spec,)))
    assert info.value.field == "controls" and "PyTorch backend only" in str(info.value)
    assert comps.denoiser.calls == 0
