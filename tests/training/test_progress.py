"""The training child's progress lines: what ``train-style --progress json`` prints and what the app reads back."""

from __future__ import annotations

import math
from pathlib import Path

from lcm_desktop.cli import main
from lcm_desktop.training.progress import PREFIX, done_line, note_line, parse_line, step_line


def test_lines_round_trip_and_anything_else_is_ignored():
    step = parse_line(step_line(3, 10, 0.125, 12.34, Path("/p/3.png")))
    assert (step.event, step.step, step.total, step.loss, step.eta_seconds, step.preview) == (
        "step", 3, 10, 0.125, 12.3, Path("/p/3.png"))
    assert math.isnan(parse_line(step_line(1, 2, float("nan"), 0)).loss)
    assert parse_line(note_line("cut")).message == "cut"
    assert parse_line(done_line(Path("/s/x.safetensors"))).output == Path("/s/x.safetensors")
    for junk in ("step 3/10", PREFIX + "{", PREFIX + '{"event": "rm -rf"}', PREFIX + '{"event": "step"}',
                 PREFIX + '{"event": "step", "step": "x", "total": 1, "loss": 0, "eta": 0}',
                 PREFIX + '{"event": "done", "output": "' + "x" * 20_000 + '"}', PREFIX + "[1]"):
        assert parse_line(junk) is None


def test_train_style_json_progress_writes_previews_and_ends_with_done(tiny_lcm, pictures, tmp_path, capsys):
    previews = tmp_path / "previews"
    code = main(["train-style", str(pictures), "--model", str(tiny_lcm), "--name", "child", "--steps", "2",
                 "--rank", "4", "--batch", "2", "--trigger", "pink", "--preview-every", "2", "--progress", "json",
                 "--preview-dir", str(previews), "--no-text-encoder"])
    assert code == 0
    events = [parse_line(line) for line in capsys.readouterr().out.splitlines()]
    assert [e.event for e in events] == ["step", "step", "done"]
    assert [e.step for e in events[:2]] == [1, 2] and events[0].preview is None
    assert events[1].preview == previews / "2.png" and events[1].preview.is_file()
    assert events[2].output.name == "child.safetensors" and events[2].output.is_file()
