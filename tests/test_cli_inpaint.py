"""``lcm-desktop generate … --init-image IMG --mask MASK``: diffusers' pixels plus overlay, the unmasked pixels
as they were, and the PNG records the mask's settings as AUTOMATIC1111 writes them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lcm_desktop.cli import main
from lcm_desktop.core.metadata import read_png_parameters


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _files(tmp_path, size=(64, 64)):
    picture = Image.new("RGB", size, (30, 90, 200))
    ImageDraw.Draw(picture).ellipse((8, 8, size[0] - 8, size[1] - 8), fill=(230, 40, 30))
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle((0, 0, size[0] // 2 - 1, size[1] // 2 - 1), fill=255)
    picture.save(tmp_path / "pic.png")
    mask.save(tmp_path / "m.png")
    return picture, mask


@pytest.mark.filterwarnings("ignore:The configuration file of this scheduler:FutureWarning")
def test_generate_with_a_mask_gives_diffusers_pixels_plus_overlay(tiny_lcm, tmp_path, capsys):
    import torch
    from diffusers import LCMScheduler, StableDiffusionInpaintPipeline

    picture, mask = _files(tmp_path)
    out = tmp_path / "inpainted.png"
    code, stdout, err = _run(capsys, "generate", "a red circle", "--model", str(tiny_lcm), "--seed", "9", "--steps",
                             "2", "--init-image", str(tmp_path / "pic.png"), "--mask", str(tmp_path / "m.png"),
                             "--strength", "1", "--out", str(out), "--quiet")
    assert code == 0, err
    assert "mask blur 4, inpaint area Whole picture" in err
    pipe = StableDiffusionInpaintPipeline.from_pretrained(tiny_lcm, safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    blurred = pipe.mask_processor.blur(mask, 4)
    ref = pipe("a red circle", image=picture, mask_image=blurred, strength=1.0, num_inference_steps=2,
               guidance_scale=8.5, generator=torch.Generator("cpu").manual_seed(9)).images[0]
    ref = np.asarray(pipe.image_processor.apply_overlay(blurred, picture, ref)).astype(int)
    with Image.open(out) as png:
        ours = np.asarray(png.convert("RGB")).astype(int)
        text, chunk = png.info["parameters"], png.info["lcm_desktop"]
    assert np.abs(ours - ref).max() <= 1
    kept = np.asarray(blurred) == 0
    assert np.array_equal(ours[kept], np.asarray(picture).astype(int)[kept])
    assert "Denoising strength: 1, Mask blur: 4, Inpaint area: Whole picture" in text
    assert '"Mask blur": "4"' in chunk
    assert read_png_parameters(out).extra["Inpaint area"] == "Whole picture"


def test_only_masked_and_outpaint_record_their_settings(tiny_lcm, tmp_path, capsys):
    picture, _ = _files(tmp_path, (128, 96))
    out = tmp_path / "crop.png"
    code, _, err = _run(capsys, "generate", "a cat", "--model", str(tiny_lcm), "--seed", "1", "--steps", "2",
                        "--init-image", str(tmp_path / "pic.png"), "--mask", str(tmp_path / "m.png"),
                        "--inpaint-area", "masked", "--inpaint-padding", "8", "--mask-blur", "0",
                        "--out", str(out), "--quiet")
    assert code == 0, err
    params = read_png_parameters(out)
    assert params.extra["Inpaint area"] == "Only masked" and params.extra["Masked area padding"] == "8"
    assert params.extra["Mask blur"] == "0"
    with Image.open(out) as png:
        assert png.size == (128, 96)  # the picture's own size
        assert np.array_equal(np.asarray(png.convert("RGB"))[48:], np.asarray(picture)[48:])
    out2 = tmp_path / "wide.png"
    code, _, err = _run(capsys, "generate", "a cat", "--model", str(tiny_lcm), "--seed", "1", "--steps", "2",
                        "--init-image", str(tmp_path / "pic.png"), "--outpaint", "left:32,bottom:16",
                        "--out", str(out2), "--quiet")
    assert code == 0, err
    with Image.open(out2) as png:
        assert png.size == (160, 112)
    assert read_png_parameters(out2).extra["Outpaint"] == "left:32,bottom:16"


@pytest.mark.parametrize(("argv", "words"), [
    (["--mask", "{good}"], "`--mask` must be used with --init-image (the picture to repaint)"),
    (["--init-image", "{good}", "--mask", "{bad}"], "`--mask` must be a picture file (PNG, JPEG"),
    (["--init-image", "{good}", "--mask", "{missing}"], "`--mask` must be an existing picture file"),
    (["--init-image", "{good}", "--mask-blur", "3"], "`--mask-blur` must be used with --mask or --outpaint"),
    (["--init-image", "{good}", "--mask", "{good}", "--mask-blur", "99"], "`--mask-blur` must be whole pixels"),
    (["--init-image", "{good}", "--outpaint", "left:10"], "`--outpaint` must be a multiple of 8 pixels"),
    (["--init-image", "{good}", "--outpaint", "up:8"], "`--outpaint` must be SIDE:PX pairs"),
])
def test_mask_flags_are_checked_before_the_model_loads(tmp_path, capsys, argv, words):
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8)).save(good)
    names = {"bad": bad, "missing": tmp_path / "nope.png", "good": good}
    argv = [a.format(**names) for a in argv]
    code, out, err = _run(capsys, "generate", "x", "--model", str(tmp_path / "no-model"), *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err


def test_an_all_black_mask_is_one_line(tiny_lcm, tmp_path, capsys):
    _files(tmp_path)
    Image.new("L", (64, 64), 0).save(tmp_path / "black.png")
    code, out, err = _run(capsys, "generate", "a cat", "--model", str(tiny_lcm), "--steps", "2", "--init-image",
                          str(tmp_path / "pic.png"), "--mask", str(tmp_path / "black.png"), "--out",
                          str(tmp_path / "o"), "--quiet")
    assert code == 2 and out == ""
    assert err.strip() == ("error: `--mask` must be white where the picture should change (black keeps it), "
                           "got 'all black'.")
