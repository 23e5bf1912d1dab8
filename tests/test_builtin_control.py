"""The built-in model's own scribble control: `generate "…" --control ring.png` draws the shape where the ring is.

The captions put the shape in one corner and a ring drawn by hand (dark on white paper, so the scribble
preprocessor inverts it) sits in the opposite one; the analyzer reads where the shape came out.  Without the
control the words win (docs/DEMO_MODEL.md, "Scribble control"); with it the ring does.
"""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from convert.demo_model.analyzer import analyze
from convert.demo_model.data import POSITIONS
from lcm_desktop.cli import main
from lcm_desktop.core.paths import builtin_model_path, resource_path

CASES = [  # caption (its words say one place), where the ring is drawn
    ("a large red circle on a blue background, top left", "bottom right"),
    ("a large yellow circle on a purple background, bottom right", "top left"),
]


def _ring_on_paper(path, position: str) -> None:
    cx, cy = POSITIONS[position]
    paper = Image.new("RGB", (128, 128), (255, 255, 255))  # drawn at twice the size: fitted like a start image
    ImageDraw.Draw(paper).ellipse((2 * cx - 26, 2 * cy - 26, 2 * cx + 26, 2 * cy + 26), outline=(0, 0, 0), width=4)
    paper.save(path)


@pytest.mark.parametrize(("caption", "ring_at"), CASES)
def test_the_shape_follows_the_drawn_ring_not_the_words(caption, ring_at, tmp_path, capsys):
    if not resource_path("models", "lcm-demo-scribble").is_dir():
        pytest.fail("the built-in scribble control is missing: run `python -m convert.demo_model train-control`")
    ring = tmp_path / "ring.png"
    _ring_on_paper(ring, ring_at)
    code = main(["generate", caption, "--control", str(ring), "--seed", "3", "--out", str(tmp_path / "with.png"),
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    code = main(["generate", caption, "--seed", "3", "--out", str(tmp_path / "without.png"), "--quiet"])
    assert code == 0
    with Image.open(tmp_path / "with.png") as with_control, Image.open(tmp_path / "without.png") as without:
        assert analyze(with_control).position == ring_at
        assert analyze(without).position == caption.rsplit(", ", 1)[1]
    assert builtin_model_path().is_dir()
