"""Core ML inpainting on the reference executor: a 4-channel LCM with the blend in Python, and a converted
9-channel inpainting UNet whose mask and masked-picture latents are named inputs — both make the PyTorch image."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_models
from PIL import Image, ImageDraw, ImageFilter

from lcm_desktop.core.mask import INPAINT_INPUTS, Inpaint
from lcm_desktop.core.request import GenerationRequest
from lcm_desktop.engine.engine import Engine
from lcm_desktop.engine.loaders import CoreMLLoader


def _inputs():
    picture = Image.new("RGB", (64, 64), (30, 90, 200))
    ImageDraw.Draw(picture).ellipse((10, 12, 54, 52), fill=(230, 40, 30))
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 31, 39), fill=255)
    return picture, mask


def _both(torch_folder, coreml_folder):
    from convert.validate import psnr

    picture, mask = _inputs()
    request = GenerationRequest("a red circle", steps=2, seed=5, init_image=picture, inpaint=Inpaint(mask=mask))
    ours = Engine(CoreMLLoader(coreml_folder, compute_units="REFERENCE")).generate(request)
    ref = Engine(torch_folder).generate(request)
    a, b = (np.asarray(r.images[0], dtype=np.float64) for r in (ours, ref))
    assert psnr(a, b) >= 35  # the fp16 packages' threshold
    kept = np.asarray(mask.filter(ImageFilter.GaussianBlur(4))) == 0
    assert np.array_equal(a[kept], np.asarray(picture, dtype=np.float64)[kept])
    return ours


def test_a_four_channel_core_ml_lcm_inpaints_with_the_blend_in_python(coreml_lcm, tiny_lcm):
    assert _both(tiny_lcm, coreml_lcm).denoiser_calls == 2


@pytest.mark.slow
def test_a_nine_channel_unet_converts_with_named_mask_inputs(tmp_path_factory):
    from lcm_desktop.core.model_info import describe_model
    from lcm_desktop.mlprogram.loader import load_program

    source = tiny_models.make_tiny_sd(tmp_path_factory.mktemp("src") / "lcm9", in_channels=9, seed=1)
    folder = tiny_models.converted(tmp_path_factory, source, components=("text_encoder", "unet", "vae_decoder",
                                                                         "vae_encoder"))
    info = describe_model(folder)
    assert info.inpainting and info.unet_in_channels == 9
    program = load_program(next(folder.glob("Unet*.mlpackage")))
    shapes = {i.name: tuple(i.shape) for i in program.inputs}
    assert shapes["sample"] == (1, 4, 8, 8) and shapes[INPAINT_INPUTS[0]] == (1, 1, 8, 8)
    assert shapes[INPAINT_INPUTS[1]] == (1, 4, 8, 8)
    _both(source, folder)
