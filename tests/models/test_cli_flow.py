"""The issue's "done when", through `lcm-desktop` itself: pull from the loopback Hub, Ctrl-C, pull
again (resume), then `generate --model <catalog id>` with the network gone."""

from __future__ import annotations

import _thread
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lcm_desktop.cli import main
from lcm_desktop.models.download import hub_cache_dir

DREAMSHAPER = "SimianLuo/LCM_Dreamshaper_v7"  # the catalog's repo, served here with the tiny LCM's files
UNET = "unet/diffusion_pytorch_model.safetensors"


def test_pull_ctrl_c_resume_then_generate_offline_by_catalog_id(hub, tiny_repo_files, tiny_lcm, tmp_path,
                                                                capsys, monkeypatch):
    from huggingface_hub import constants

    hub.add(DREAMSHAPER, tiny_repo_files)
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 8 * 1024)
    size = len(tiny_repo_files[UNET])
    pause = hub.pause(DREAMSHAPER, UNET, after=size // 2)

    def ctrl_c():
        pause.reached.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(
            p.stat().st_size for p in hub_cache_dir().glob("*/blobs/*.incomplete")
        ) < size // 4:
            time.sleep(0.005)
        _thread.interrupt_main()
        pause.release.set()

    threading.Thread(target=ctrl_c, daemon=True).start()
    assert main(["models", "pull", "lcm-dreamshaper-v7"]) == 130
    assert "again to resume" in capsys.readouterr().err.splitlines()[-1]
    assert main(["models", "pull", "lcm-dreamshaper-v7"]) == 0
    assert [r for _, _, r in hub.gets(UNET)][-1].startswith("bytes=")
    assert not hub.gets(".bin"), "a pickle was fetched"
    capsys.readouterr()

    hub.stop()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def no_socket(self, address):
        raise OSError(f"socket use during an offline generation: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", no_socket)
    args = ["generate", "a red circle", "--steps", "2", "--seed", "5", "--quiet"]
    assert main([*args, "--model", "lcm-dreamshaper-v7", "--out", str(tmp_path / "pulled.png")]) == 0
    assert main([*args, "--model", str(tiny_lcm), "--out", str(tmp_path / "original.png")]) == 0
    pulled = np.asarray(Image.open(tmp_path / "pulled.png"))
    assert pulled.std() > 0
    np.testing.assert_array_equal(pulled, np.asarray(Image.open(tmp_path / "original.png")))


def test_models_pull_in_a_fresh_process(hub, tmp_path):
    hub.add("madebyollin/taesd", {"config.json": b'{"_class_name": "AutoencoderTiny"}',
                                  "diffusion_pytorch_model.safetensors": b"\x00" * 4096})
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_HOME=str(tmp_path / "hf"), LCM_DESKTOP_HOME=str(tmp_path / "app"), HF_ENDPOINT=hub.url,
               HF_HUB_DISABLE_XET="1")
    result = subprocess.run([sys.executable, "-m", "lcm_desktop", "models", "pull", "taesd"], env=env,
                            capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
    assert (Path(result.stdout.strip()) / "config.json").is_file()
