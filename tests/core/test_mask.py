"""The mask rules: fitting, blur, all black / all white, the overlay, the "only masked" box, outpainting."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lcm_desktop.core.errors import InvalidRequestError
from lcm_desktop.core.mask import (
    FILL_NOISE,
    Inpaint,
    InpaintArea,
    MaskState,
    Outpaint,
    apply_overlay,
    crop_box,
    load_mask,
    mask_state,
    outpaint_canvas,
)
from lcm_desktop.core.model_info import describe_model
from lcm_desktop.core.request import GenerationRequest


def test_a_mask_of_any_size_and_mode_is_fitted_like_the_start_picture(tmp_path):
    wide = Image.new("RGBA", (200, 100), (0, 0, 0, 255))
    ImageDraw.Draw(wide).rectangle((100, 0, 199, 99), fill=(255, 255, 255, 255))  # right half white
    wide.save(tmp_path / "m.png")
    mask = load_mask(tmp_path / "m.png", 64, 64)
    assert mask.mode == "L" and mask.size == (64, 64)
    array = np.asarray(mask)
    assert array[:, :28].max() == 0 and array[:, 36:].min() == 255  # cover + centre crop keeps the halves
    clear = Image.new("LA", (64, 64), (0, 0))  # transparent: white paper, as a sketch → all repainted
    assert mask_state(load_mask(clear, 64, 64)) is MaskState.ALL_WHITE


def test_blur_softens_the_edge_and_all_black_is_one_line():
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((24, 24, 39, 39), fill=255)
    blurred = np.asarray(load_mask(mask, 64, 64, blur=4))
    assert 0 < blurred[31, 20] < 255 and blurred[31, 31] > 200 and blurred[0, 0] == 0
    assert mask_state(Image.fromarray(blurred)) is MaskState.PARTIAL
    with pytest.raises(InvalidRequestError, match="`mask` must be white where the picture should change"):
        mask_state(Image.new("L", (64, 64), 40))


def test_overlay_is_diffusers_apply_overlay():
    from diffusers.image_processor import VaeImageProcessor

    rng = np.random.default_rng(0)
    original, generated = (Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(2))
    mask = Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8))
    ours = apply_overlay(mask, original, generated)
    ref = VaeImageProcessor().apply_overlay(mask, original, generated)
    assert np.array_equal(np.asarray(ours), np.asarray(ref))
    black = Image.new("L", (32, 32), 0)
    assert np.array_equal(np.asarray(apply_overlay(black, original, generated)), np.asarray(original))


def test_the_only_masked_box_is_padded_grown_to_the_aspect_and_clipped():
    mask = Image.new("L", (1000, 600), 0)
    ImageDraw.Draw(mask).rectangle((500, 100, 549, 119), fill=255)  # 50 × 20
    x0, y0, x1, y1 = crop_box(mask, 10, 512, 512)
    assert (x0, x1) == (490, 560) and (x1 - x0) == (y1 - y0)  # 70 wide, grown to 70 tall around 80…140
    assert y0 <= 90 and y1 >= 130
    corner = Image.new("L", (100, 100), 0)
    ImageDraw.Draw(corner).rectangle((0, 0, 9, 9), fill=255)
    assert crop_box(corner, 32, 64, 32) == (0, 0, 84, 42)  # clipped at 0, grown to 2:1 inside the picture


def test_outpaint_parse_canvas_and_fill_rule():
    spec = Outpaint.parse("left:16, top:8")
    assert spec == Outpaint(left=16, top=8) and spec.text == "left:16,top:8"
    picture = Image.new("RGB", (67, 50), (200, 10, 10))  # cropped down to 64 × 48
    canvas, mask = outpaint_canvas(picture, spec, seed=1)
    assert canvas.size == (80, 56) and mask.size == (80, 56)
    array, m = np.asarray(canvas).astype(float), np.asarray(mask)
    assert m[8:, 16:].max() == 0 and m[:8].min() == 255 and m[:, :16].min() == 255
    assert np.array_equal(array[8:, 16:], np.asarray(picture.crop((1, 1, 65, 49))).astype(float))
    border = array[m == 255]
    assert abs(border[:, 0].mean() - 200) < 5 and abs(border[:, 0].std() - FILL_NOISE) < 6  # edge colour + noise
    again, _ = outpaint_canvas(picture, spec, seed=1)
    assert np.array_equal(np.asarray(again), np.asarray(canvas))  # the seed decides the noise
    for text in ("left:10", "up:8", "left:8,left:8", "left:0"):
        with pytest.raises(InvalidRequestError, match="`outpaint` must"):
            Outpaint.parse(text)


def test_inpaint_and_request_validation(tmp_path):
    assert Inpaint(mask="m.png").mask == tmp_path.__class__("m.png")
    assert Inpaint(mask="m.png", area="masked").area is InpaintArea.MASKED
    for kwargs, words in ((dict(mask=3), "`mask` must be a file path or a PIL image"),
                          (dict(), "`mask` must be a mask picture"),
                          (dict(mask="m.png", blur=-1), "`mask_blur` must be whole pixels from 0 to 64"),
                          (dict(mask="m.png", padding=1000), "`inpaint_padding` must be"),
                          (dict(mask="m.png", area="half"), "`inpaint_area` must be whole or masked")):
        with pytest.raises(InvalidRequestError, match=words):
            Inpaint(**kwargs)
    with pytest.raises(InvalidRequestError, match="`mask` must be used with init_image"):
        GenerationRequest("a cat", inpaint=Inpaint(mask="m.png"))
    params = Inpaint(mask="m.png", blur=4, area=InpaintArea.MASKED, padding=32).parameters()
    assert params == {"Mask blur": "4", "Inpaint area": "Only masked", "Masked area padding": "32"}


def test_describe_model_says_an_inpainting_unet(tiny_lcm, tmp_path):
    import json
    import shutil

    assert describe_model(tiny_lcm).unet_in_channels == 4 and not describe_model(tiny_lcm).inpainting
    copy = tmp_path / "inpaint-model"
    shutil.copytree(tiny_lcm, copy, ignore=shutil.ignore_patterns("*.safetensors"))
    config = json.loads((copy / "unet" / "config.json").read_text())
    (copy / "unet" / "config.json").write_text(json.dumps({**config, "in_channels": 9}))
    info = describe_model(copy)
    assert info.inpainting and info.unet_in_channels == 9
