"""``generate --control``: flags paired by order, the PNG's ControlNet lines, reading them back, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from cli_output import error_line
from PIL import Image, ImageDraw
from tiny_controls import make_tiny_adapter, make_tiny_controlnet

from lcm_desktop.cli import main
from lcm_desktop.core.control import ControlRecord
from lcm_desktop.core.metadata import ImageParameters, read_png_parameters


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def control_files(tmp_path_factory, tiny_lcm):
    root = tmp_path_factory.mktemp("cli-controls")
    paper = Image.new("RGB", (64, 64), (255, 255, 255))
    ImageDraw.Draw(paper).ellipse((30, 30, 58, 58), outline=(0, 0, 0), width=3)
    paper.save(root / "ring.png")
    return {"ring": root / "ring.png", "controlnet": make_tiny_controlnet(tiny_lcm, root / "cn"),
            "adapter": make_tiny_adapter(tiny_lcm, root / "adapter")}


def test_two_controls_are_recorded_and_read_back(tiny_lcm, control_files, tmp_path, capsys):
    ring, cn, adapter = control_files["ring"], control_files["controlnet"], control_files["adapter"]
    code, out, err = _run(capsys, "generate", "a red circle", "--model", str(tiny_lcm), "--seed", "5", "--steps", "2",
                          "--control", str(ring), "--control-model", str(cn), "--control-preprocess", "scribble",
                          "--control-scale", "0.8", "--control", str(ring), "--control-model", str(adapter),
                          "--control-end", "0.5", "--out", str(tmp_path / "a.png"), "--quiet")
    assert code == 0, err
    params = read_png_parameters(tmp_path / "a.png")
    assert params.controls == (ControlRecord("cn", "scribble", 0.8, 0.0, 1.0),
                               ControlRecord("adapter", "none", 1.0, 0.0, 0.5))
    with Image.open(tmp_path / "a.png") as image:
        text = image.info["parameters"]
    assert 'ControlNet 0: "Module: scribble, Model: cn, Weight: 0.8, Guidance Start: 0, Guidance End: 1"' in text
    assert ImageParameters.parse(text).controls == params.controls  # A1111's text alone restores them too
    assert "control cn × 0.8" in err
    code, out, err = _run(capsys, "generate", "a red circle", "--model", str(tiny_lcm), "--seed", "5", "--steps", "2",
                          "--out", str(tmp_path / "b.png"), "--quiet")
    assert code == 0
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "b.png") as b:
        assert np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean() > 1.0


@pytest.mark.parametrize(("extra", "flag", "words"), [
    ([], "--control-model", "ships no control model of its own"),
    (["--control-model", "no-such-control"], "", "No control model 'no-such-control'"),
    (["--control-model", "x", "--control-scale", "9"], "--control-scale", "from 0 to 4"),
])
def test_control_flags_are_checked_before_the_model_loads(tiny_lcm, control_files, capsys, extra, flag, words):
    code, _, err = _run(capsys, "generate", "a cat", "--model", str(tiny_lcm), "--control", str(control_files["ring"]),
                        *extra, "--quiet")
    line = error_line(err)
    assert code == 2 and words in line and flag in line


def test_a_flag_given_twice_for_one_control_is_refused(tiny_lcm, control_files, capsys):
    code, _, err = _run(capsys, "generate", "x", "--control", str(control_files["ring"]), "--control-scale", "1",
                        "--control-scale", "2")
    assert code == 2 and "--control-scale: given twice for --control number 1" in error_line(err)


def test_a_control_that_is_not_a_picture_names_the_flag(tiny_lcm, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    code, _, err = _run(capsys, "generate", "a cat", "--model", str(tiny_lcm), "--control", str(bad),
                        "--control-model", "x", "--quiet")
    line = error_line(err)
    assert code == 2 and "--control" in line and "notes.png" in line
