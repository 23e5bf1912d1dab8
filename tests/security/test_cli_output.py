"""Output hygiene (issue 25 item 7): text from files printed escaped, a closed pipe ends quietly, a bug is one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lcm_desktop.cli import EXIT_BROKEN_PIPE, EXIT_ERROR, guarded, main
from lcm_desktop.core.paths import AppPaths
from lcm_desktop.core.text import printable

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("text", "expected"), [
    ("plain words, ünïcode ✓", "plain words, ünïcode ✓"),
    ("a\x1b[2Jb", "a\\x1b[2Jb"),  # clear screen
    ("row\nerror: forged", "row\\x0aerror: forged"),
    ("back\rover", "back\\x0dover"),
    ("evil\u202etxt.exe", "evil\\u202etxt.exe"),  # right-to-left override
    ("bell\x07\x7f\x9b", "bell\\x07\\x7f\\x9b"),  # C1 CSI too
])
def test_printable_escapes_control_and_format_characters(text, expected):
    assert printable(text) == expected
    assert printable("two\nlines\x1b", newlines=True) == "two\nlines\\x1b"


def test_a_style_file_named_with_escapes_lists_escaped(capsys):
    styles = AppPaths.default().data / "styles"
    styles.mkdir(parents=True)
    (styles / "x\x1b[2J\rFAKE.safetensors").write_bytes(b"not a lora")
    assert main(["models", "styles"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out
    assert "x\\x1b[2J\\x0dFAKE" in out and "rename the file" in out


def test_an_unexpected_exception_is_one_line_and_its_traceback_is_logged(capsys, monkeypatch):
    monkeypatch.delenv("LCM_DESKTOP_DEBUG", raising=False)

    def bug() -> int:
        raise ZeroDivisionError("boom\n\x1b[31mred")

    assert guarded(object(), bug) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "\x1b" not in err
    log_file = AppPaths.default().log_file
    assert f"details are in {log_file}" in err and "unexpected ZeroDivisionError" in err
    assert "Traceback" in log_file.read_text() and "in bug" in log_file.read_text()
    monkeypatch.setenv("LCM_DESKTOP_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        guarded(object(), bug)
    with pytest.raises(ZeroDivisionError):
        guarded(object(), bug, debug=True)


def test_models_list_into_a_closed_pipe_ends_quietly(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line (as `| head -0`; `| head -1` races to this)
    env = {**os.environ, "LCM_DESKTOP_HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(ROOT), "LCM_DESKTOP_DEBUG": ""}
    try:
        done = subprocess.run([sys.executable, "-m", "lcm_desktop", "models", "list"], stdout=write_end,
                              stderr=subprocess.PIPE, env=env, timeout=120, cwd=tmp_path)
    finally:
        os.close(write_end)
    assert done.stderr.decode() == ""
    assert done.returncode == EXIT_BROKEN_PIPE
