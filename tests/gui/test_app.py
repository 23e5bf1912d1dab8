from __future__ import annotations

import os
import subprocess
import sys


def test_self_test_opens_generates_and_exits_zero(tiny_lcm, tmp_path):
    env = {**os.environ, "LCM_DESKTOP_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-m", "lcm_desktop", "gui", "--self-test", "--model", str(tiny_lcm)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "self-test: ok" in proc.stdout
    assert len(list((tmp_path / "home" / "output").glob("*.png"))) == 1


def test_self_test_fails_on_a_broken_model(tmp_path):
    env = {**os.environ, "LCM_DESKTOP_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "lcm_desktop", "gui", "--self-test", "--model", str(tmp_path / "empty")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1 and "model_index.json" in proc.stderr


def test_window_module_does_not_import_torch():
    code = ("import sys; import lcm_desktop.gui.main_window, lcm_desktop.gui.app; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_self_test_without_any_model_fails_cleanly(tmp_path, monkeypatch):
    env = {**os.environ, "LCM_DESKTOP_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}
    code = ("import sys; from pathlib import Path; import lcm_desktop.core.paths as paths; "
            "paths.builtin_model_path = lambda: Path('/nonexistent'); "  # before anything imports it by name
            "from lcm_desktop.gui.app import main; sys.exit(main(self_test=True))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr  # not 134 (a QThread destroyed while running aborts)
    assert "No model is installed" in proc.stderr


def test_self_test_starts_with_a_fifo_history_and_logs_why(tiny_lcm, tmp_path):
    """A FIFO in place of history.sqlite3 hung the app at start (sqlite blocks opening it); the log file, which the
    crash dialog names, must also get messages when the app is started through the CLI (which sets up logging first).
    """
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    os.mkfifo(home / "data" / "history.sqlite3")
    env = {**os.environ, "LCM_DESKTOP_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-m", "lcm_desktop", "gui", "--self-test", "--model", str(tiny_lcm)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "self-test: ok" in proc.stdout
    assert "named pipe (FIFO)" in (home / "logs" / "lcm-desktop.log").read_text()
