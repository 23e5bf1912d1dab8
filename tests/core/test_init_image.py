"""The starting image's one rule (cover, centre crop, white behind transparency) and bad files as one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lcm_desktop.core.errors import InvalidRequestError
from lcm_desktop.core.init_image import check_image_file, fit_image, load_init_image, open_image
from lcm_desktop.core.request import GenerationRequest, check_steps_for_strength


def _halves(size=(200, 100)) -> Image.Image:
    """Left half red, right half blue; a green band in the middle third of the width."""
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    image.paste((0, 255, 0), (size[0] // 3, 0, 2 * size[0] // 3, size[1]))
    return image


def test_wide_picture_covers_then_is_centre_cropped():
    fitted = fit_image(_halves((300, 100)), 64, 64)  # scaled to 192×64, the middle 64 columns kept
    assert fitted.size == (64, 64) and fitted.mode == "RGB"
    assert fitted.getpixel((32, 32)) == (0, 255, 0)  # the centre band fills the crop
    tall = fit_image(_halves((100, 400)).rotate(90, expand=True), 64, 128)
    assert tall.size == (64, 128)


def test_small_picture_is_scaled_up_to_cover():
    fitted = fit_image(Image.new("RGB", (10, 20), (9, 99, 199)), 96, 64)
    assert fitted.size == (96, 64) and fitted.getpixel((50, 30)) == (9, 99, 199)


def test_transparency_is_flattened_on_white_and_modes_become_rgb():
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    rgba.paste((200, 0, 0, 255), (0, 0, 32, 64))
    fitted = fit_image(rgba, 64, 64)
    assert fitted.getpixel((48, 10)) == (255, 255, 255) and fitted.getpixel((10, 10)) == (200, 0, 0)
    assert fit_image(Image.new("L", (64, 64), 77), 64, 64).getpixel((0, 0)) == (77, 77, 77)
    assert fit_image(Image.new("LA", (64, 64), (0, 0)), 64, 64).getpixel((0, 0)) == (255, 255, 255)
    assert fit_image(Image.new("CMYK", (64, 64), (0, 0, 0, 0)), 64, 64).getpixel((0, 0)) == (255, 255, 255)
    assert fit_image(Image.new("1", (64, 64), 1), 64, 64).getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(np.full((64, 64), 32768, dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    value = load_init_image(path, 64, 64).getpixel((5, 5))
    assert value[0] == value[1] == value[2] and 126 <= value[0] <= 129


def test_exif_rotation_is_applied(tmp_path):
    path = tmp_path / "phone.jpg"
    stored = Image.new("RGB", (120, 60), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 60, 60))  # red on the stored left
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90° clockwise: the stored left becomes the top
    stored.save(path, exif=exif, quality=95)
    shown = open_image(path)
    assert shown.size == (60, 120)
    fitted = load_init_image(path, 64, 128)
    assert fitted.getpixel((32, 10))[0] > 200 and fitted.getpixel((32, 118))[2] > 200


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="measures the peak memory with /proc")
def test_a_huge_jpeg_is_decoded_small(tmp_path):
    """10,000 × 10,000: decoded at 1/8 scale (draft) and reduced; the fitting process stays small."""
    path = tmp_path / "huge.jpg"
    Image.new("RGB", (10_000, 10_000), (40, 160, 90)).save(path, quality=50)
    code = (f"from lcm_desktop.core.init_image import load_init_image as f; im = f({str(path)!r}, 512, 512); "
            "print(im.size, [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2]).stdout.rsplit(" ", 1)
    assert out[0] == "(512, 512)"
    peak_mib = int(out[1]) / 1024  # the child's own high-water mark (ru_maxrss would count pytest's at fork)
    assert peak_mib < 150, peak_mib  # a full decode would be 300 MB of pixels alone


def test_not_a_picture_missing_and_too_big_are_one_line(tmp_path, monkeypatch):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(InvalidRequestError, match=r"`init_image` must be a picture file \(PNG, JPEG"):
        check_image_file(text)
    with pytest.raises(InvalidRequestError, match="an existing picture file"):
        load_init_image(tmp_path / "missing.png", 64, 64)
    with pytest.raises(InvalidRequestError, match="an existing picture file"):
        check_image_file(tmp_path)
    truncated = tmp_path / "cut.png"
    _halves().save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(InvalidRequestError, match="readable picture file"):
        load_init_image(truncated, 64, 64)
    big = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(InvalidRequestError, match="at most 0 megapixels") as err:
        check_image_file(big)
    assert "\n" not in str(err.value) and "scale it down" in str(err.value)


def test_request_strength_and_init_image_are_checked(tmp_path):
    path = tmp_path / "a.png"
    request = GenerationRequest("x", init_image=str(path), strength=0.5)
    assert request.init_image == Path(path) and request.is_img2img
    assert not GenerationRequest("x").is_img2img
    for bad in (0, 0.0, -0.1, 1.5, float("nan"), True, "0.5"):
        with pytest.raises(InvalidRequestError, match="`strength` must be a number greater than 0 and at most 1"):
            GenerationRequest("x", init_image=path, strength=bad)
    with pytest.raises(InvalidRequestError, match="1 without a starting image"):
        GenerationRequest("x", strength=0.5)
    with pytest.raises(InvalidRequestError, match="a file path or a PIL image"):
        GenerationRequest("x", init_image=42)
    image_request = GenerationRequest("x", init_image=Image.new("RGB", (8, 8)), strength=1)
    assert image_request.strength == 1
    check_steps_for_strength(4, 0.08)
    with pytest.raises(InvalidRequestError, match=r"at least 0\.08 with 4 steps \(or at most 3 steps"):
        check_steps_for_strength(4, 0.07)
