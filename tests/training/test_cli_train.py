"""``lcm-desktop train-style`` end to end on a tiny model: a style file, one-line errors, Ctrl-C keeps a checkpoint."""

from __future__ import annotations

import os
import signal
import threading

from lcm_desktop.cli import main
from lcm_desktop.cli.train import _CtrlCSets
from lcm_desktop.core.paths import AppPaths
from lcm_desktop.training.style_file import read_style_info
from lcm_desktop.training.trainer import checkpoint_path


def test_train_style_writes_the_style_and_says_where(tiny_lcm, pictures, capsys):
    code = main(["train-style", str(pictures), "--model", str(tiny_lcm), "--name", "Pink 1", "--steps", "4",
                 "--rank", "4", "--batch", "2", "--trigger", "pink", "--caption", "a {} square"])
    out, err = capsys.readouterr()
    target = AppPaths.default().data / "styles" / "Pink 1.safetensors"
    assert code == 0 and out.strip() == str(target)
    assert "step 4/4 · loss " in err and "ETA 0s" in err and "trained 4 steps (4 pictures from" in err
    assert read_style_info(target).trigger == "pink"
    # the app's style store lists it, and generating with it (--lora, or a prompt tag) changes the picture
    from lcm_desktop.models.styles import StyleStore

    style = next(s for s in StyleStore().styles() if s.name == "Pink 1")
    assert style.info is not None and style.info.family == "sd" and not style.builtin
    args = ["generate", "a pink square", "--model", str(tiny_lcm), "--seed", "1", "--steps", "2", "--quiet"]
    assert main([*args, "--out", str(pictures.parent / "bare.png")]) == 0
    assert main([*args, "--lora", "Pink 1:4", "--out", str(pictures.parent / "styled.png")]) == 0
    capsys.readouterr()
    from PIL import Image

    with Image.open(pictures.parent / "bare.png") as a, Image.open(pictures.parent / "styled.png") as b:
        assert a.tobytes() != b.tobytes()

    code = main(["train-style", str(pictures), "--model", str(tiny_lcm), "--name", "Pink 1", "--steps", "1"])
    assert code == 2 and "exists already" in capsys.readouterr().err


def test_errors_are_one_line_naming_the_flag(tmp_path, tiny_lcm, capsys):
    assert main(["train-style", str(tmp_path), "--model", str(tiny_lcm), "--name", "a/b"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: `--name` must be") and err.count("\n") == 1
    assert main(["train-style", str(tmp_path / "none"), "--model", str(tiny_lcm), "--name", "ok"]) == 2
    assert "Cannot read the picture folder" in capsys.readouterr().err
    assert main(["train-style", str(tmp_path), "--model", "no-such-model", "--name", "ok"]) == 2
    assert "No model 'no-such-model'" in capsys.readouterr().err


def test_ctrl_c_stops_between_steps_keeps_a_checkpoint_and_says_how_to_resume(tiny_lcm, pictures, capsys,
                                                                                monkeypatch):
    from lcm_desktop.training import trainer

    real = trainer._Run._one_step

    def one_step_then_ctrl_c(self):
        loss = real(self)
        if self.step == 1:  # the second step: as if the user pressed Ctrl-C during it
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    monkeypatch.setattr(trainer._Run, "_one_step", one_step_then_ctrl_c)
    argv = ["train-style", str(pictures), "--model", str(tiny_lcm), "--name", "stopped", "--steps", "5",
            "--trigger", "pink", "--batch", "2"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "stopped at step 2 of 5" in err and "--resume" in err
    assert checkpoint_path("stopped").is_file()
    monkeypatch.setattr(trainer._Run, "_one_step", real)
    assert main([*argv, "--resume"]) == 0
    assert "resumed from step 2" in capsys.readouterr().err


def test_a_second_ctrl_c_interrupts_at_once():
    event = threading.Event()
    before = signal.getsignal(signal.SIGINT)
    with _CtrlCSets(event):
        os.kill(os.getpid(), signal.SIGINT)
        assert event.is_set()
        assert signal.getsignal(signal.SIGINT) is before  # the next one is the usual KeyboardInterrupt
    assert signal.getsignal(signal.SIGINT) is before
