"""``lcm-desktop serve``: refuses an unsafe bind, and (the issue's "done when") answers an AUTOMATIC1111 client
library's txt2img and img2img on the built-in model with the CLI's pixels, lists models and styles, answers a bad
request with a 4xx and goes on serving, and wants its credentials."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_output import error_line
from PIL import Image

from lcm_desktop.cli import main as cli_main
from lcm_desktop.history import History

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("argv", "says"), [
    (["serve", "--host", "0.0.0.0"], "`--api-auth` must be USER:PASS when --host 0.0.0.0"),
    (["serve", "--api-auth", "nopassword"], "`--api-auth` must be USER:PASS with both parts non-empty"),
    (["serve", "--port", "70000"], "`--port` must be from 0 to 65535"),
])
def test_serve_refuses_an_unsafe_or_bad_setting_before_it_starts(argv, says, capsys):
    assert cli_main(argv) == 2
    assert says in error_line(capsys.readouterr().err)


def _cli(tmp_path: Path, name: str, *extra: str) -> np.ndarray:
    out = tmp_path / f"{name}.png"
    assert cli_main(["generate", "a red circle", "--steps", "2", "--width", "64", "--height", "64", "--seed", "3",
                     "--guidance", "7", "--out", str(out), "--quiet", *extra]) == 0
    return np.asarray(Image.open(out).convert("RGB"))


@pytest.mark.slow  # ~20-50 s on a shared 2-core machine: a fresh process imports torch and diffusers and loads
# the model; tests/api/test_routes.py checks the same through the client library in-process, in a second
def test_serve_answers_an_a1111_client_library_with_the_clis_pixels(tmp_path):
    import webuiapi

    home = tmp_path / "serve-home"
    env = {**os.environ, "LCM_DESKTOP_HOME": str(home), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lcm_desktop", "serve", "--port", "0", "--api-auth", "ann:secret"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        lines = []
        while not (lines and "Serving" in lines[-1]):
            line = proc.stderr.readline()
            assert line, "".join(lines)  # the server exited: its output says why
            lines.append(line)
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/sdapi/v1", lines[-1]).group(1))

        stranger = webuiapi.WebUIApi(host="127.0.0.1", port=port)
        with pytest.raises(RuntimeError) as refused:
            stranger.txt2img(prompt="a red circle", steps=2, width=64, height=64)
        assert refused.value.args[0] == 401

        api = webuiapi.WebUIApi(host="127.0.0.1", port=port, username="ann", password="secret")
        made = api.txt2img(prompt="a red circle", steps=2, width=64, height=64, seed=3, cfg_scale=7)
        assert made.info["all_seeds"] == [3] and "Seed: 3" in made.image.info["parameters"]
        with pytest.raises(RuntimeError) as bad:
            api.txt2img(prompt="a red circle", steps=99, width=64, height=64)
        assert bad.value.args[0] == 422 and "steps" in bad.value.args[1]
        made.image.save(tmp_path / "start.png")
        edited = api.img2img(images=[made.image], prompt="a red circle", denoising_strength=0.5, steps=2, width=64,
                             height=64, seed=3, cfg_scale=7)
        assert edited.info["denoising_strength"] == 0.5
        assert "lcm-demo" in api.util_get_model_names()
        assert "huge" in [style["name"] for style in api.get_loras()]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert np.array_equal(np.asarray(made.image.convert("RGB")), _cli(tmp_path, "t2i"))
    cli_edit = _cli(tmp_path, "i2i", "--init-image", str(tmp_path / "start.png"), "--strength", "0.5")
    assert np.array_equal(np.asarray(edited.image.convert("RGB")), cli_edit)
    history = History(home / "data" / "history.sqlite3")
    assert [e.origin for e in history.entries()] == ["api", "api"]
    history.close()
