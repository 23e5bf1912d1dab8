"""The training folder: captions (sidecar, template, trigger), fitting, and bad folders as one clear line."""

from __future__ import annotations

import pytest
from training.pictures import write_pictures

from lcm_desktop.core.errors import TrainingError
from lcm_desktop.training.data import load_training_set


def test_sidecar_captions_win_and_pictures_are_fitted(tmp_path):
    folder = write_pictures(tmp_path / "p", count=2, size=96, captions=True)
    (folder / "pic1.txt").unlink()
    data = load_training_set(folder, 64, template="a {} picture", trigger="pink")
    assert data.captions == ("a pink square number 0", "a pink picture")
    assert [im.size for im in data.images] == [(64, 64), (64, 64)]
    assert data.summary == f"2 pictures from {folder}"


def test_fitting_is_cover_and_centre_crop(tmp_path):
    from PIL import Image

    folder = tmp_path / "wide"
    folder.mkdir()
    image = Image.new("RGB", (128, 64), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 32, 64))  # a blue left quarter: cropped away by the centre crop
    image.save(folder / "wide.png")
    data = load_training_set(folder, 64, trigger="x")
    assert data.images[0].getpixel((0, 32)) == (255, 0, 0)


def test_bad_and_tiny_pictures_are_skipped_and_counted(tmp_path):
    folder = write_pictures(tmp_path / "p", count=2)
    write_pictures(tmp_path / "small", count=1, size=24)
    (tmp_path / "small" / "pic0.png").rename(folder / "tiny.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (folder / "notes.md").write_text("not a picture")
    data = load_training_set(folder, 64, trigger="pink")
    assert (len(data), data.skipped_unreadable, data.skipped_tiny) == (2, 1, 1)
    assert "skipped: 1 unreadable, 1 too small" in data.summary


@pytest.mark.parametrize("case", ["empty", "missing", "only-bad", "no-caption"])
def test_unusable_folders_are_one_line(tmp_path, case):
    folder = tmp_path / "f"
    if case != "missing":
        folder.mkdir()
    if case == "only-bad":
        (folder / "a.jpg").write_bytes(b"nope")
        write_pictures(tmp_path / "s", count=1, size=16)
        (tmp_path / "s" / "pic0.png").rename(folder / "b.png")
    if case == "no-caption":
        write_pictures(folder, count=1)
    with pytest.raises(TrainingError) as err:
        load_training_set(folder, 64, trigger=None if case == "no-caption" else "pink")
    message = err.value.user_message
    assert "\n" not in message and str(folder) in message or "pic0.txt" in message
    expected = {"empty": "No pictures", "missing": "Cannot read", "only-bad": "1 unreadable, 1 smaller than 32",
                "no-caption": "--trigger"}[case]
    assert expected in message
