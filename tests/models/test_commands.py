"""`lcm-desktop models …` end to end against the loopback Hub, and resolve_model."""

from __future__ import annotations

import _thread
import argparse
import os
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from models.model_helpers import TINY_PATTERNS, hub_entry, write_catalog

from lcm_desktop.cli import guarded
from lcm_desktop.cli import models as models_command
from lcm_desktop.core.errors import ModelNotFoundError
from lcm_desktop.models.catalog import load_catalog
from lcm_desktop.models.download import hub_cache_dir
from lcm_desktop.models.resolve import resolve_model

REPO = "tiny/lcm"
UNET = "unet/diffusion_pytorch_model.safetensors"


@pytest.fixture
def catalog(tmp_path, hub, tiny_repo_files):
    hub.add(REPO, tiny_repo_files)
    entries = [hub_entry("tiny-lcm", REPO, TINY_PATTERNS)]
    return load_catalog(write_catalog(tmp_path / "catalog.json", entries))


def models(catalog, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lcm-desktop")
    models_command.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["models", *argv])
    return guarded(models_command, lambda: models_command.run(args, catalog=catalog),
                   cancelled=models_command.cancelled_message(args))


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_pull_interrupted_by_ctrl_c_resumes_and_generates_offline(catalog, hub, tiny_lcm, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 8 * 1024)
    size = len(hub.repos[REPO].files[UNET])
    pause = hub.pause(REPO, UNET, after=size // 2)

    def ctrl_c():
        pause.reached.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(  # until the client has written a quarter of the UNet
            p.stat().st_size for p in hub_cache_dir().glob("*/blobs/*.incomplete")
        ) < size // 4:
            time.sleep(0.005)
        _thread.interrupt_main()  # SIGINT's effect, delivered when the main thread runs Python again
        pause.release.set()

    threading.Thread(target=ctrl_c, daemon=True).start()
    assert models(catalog, "pull", "tiny-lcm", "--quiet") == 130
    err = capsys.readouterr().err
    assert "run `lcm-desktop models pull tiny-lcm` again to resume" in err.splitlines()[-1]
    [partial] = list(hub_cache_dir().glob("*/blobs/*.incomplete"))
    kept = partial.stat().st_size
    assert size // 4 <= kept < size
    assert models(catalog, "list") == 0
    assert "incomplete" in next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tiny-lcm"))

    hub.log.clear()
    assert models(catalog, "pull", "tiny-lcm") == 0
    out, err = capsys.readouterr()
    assert [r for _, _, r in hub.gets(UNET)] == [f"bytes={kept}-"]
    assert "100%" in err  # the progress bar on stderr
    snapshot = out.strip().splitlines()[-1]
    assert open(os.path.join(snapshot, UNET), "rb").read() == (tiny_lcm / UNET).read_bytes()

    # Offline: the Hub is gone, huggingface_hub is offline and no socket may connect at all.
    hub.stop()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def no_socket(self, address):
        raise OSError(f"socket use during an offline generation: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", no_socket)
    from lcm_desktop.core.request import GenerationRequest
    from lcm_desktop.engine.engine import Engine

    folder = resolve_model("tiny-lcm", catalog)
    assert str(folder) == snapshot
    request = GenerationRequest("a red circle", steps=2, seed=7)
    pulled = np.asarray(Engine(folder).generate(request).images[0])
    original = np.asarray(Engine(tiny_lcm).generate(request).images[0])
    assert pulled.shape == (64, 64, 3) and pulled.std() > 0
    np.testing.assert_array_equal(pulled, original)


def test_list_du_rm_through_the_cli(catalog, capsys):
    assert models(catalog, "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAME", "KIND", "INSTALLED", "SIZE", "PATH"]
    assert out[1].split()[:3] == ["tiny-lcm", "lcm", "no"] and out[1].split()[3].startswith("~")

    assert models(catalog, "pull", "tiny-lcm", "--quiet") == 0
    capsys.readouterr()
    assert models(catalog, "list") == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[:3] == ["tiny-lcm", "lcm", "yes"] and row[-1].endswith("snapshots/" + _commit(catalog))
    assert models(catalog, "du") == 0
    du = capsys.readouterr().out.splitlines()
    assert du[0].split()[0] == "tiny-lcm" and du[-1].split()[0] == "total"
    assert du[0].split()[1:3] == du[-1].split()[1:3]

    assert models(catalog, "rm", "tiny-lcm") == 0
    assert capsys.readouterr().out.startswith("deleted tiny-lcm, freed ")
    assert models(catalog, "rm", "tiny-lcm") == 2
    assert _one_line(capsys.readouterr().err) == "error: tiny-lcm is not installed; nothing to delete."


def _commit(catalog) -> str:
    import hashlib

    return hashlib.sha1(REPO.encode()).hexdigest()


@pytest.mark.parametrize(
    "argv, message",
    [(["pull", "tiny-lcn"], "No catalog model with id 'tiny-lcn'; did you mean tiny-lcm?"),
     (["pull", "lcm-demo"], "ships with LCM Desktop"),
     (["rm", "nothing"], "No installed model named 'nothing'"),
     (["import", "/no/such/folder"], "does not exist")],
)
def test_failures_are_one_line_and_exit_2(catalog, capsys, tmp_path, argv, message):
    catalog = load_catalog(write_catalog(
        tmp_path / "c.json",
        [{"id": "lcm-demo", "name": "Built-in demo", "kind": "lcm", "source": "builtin", "family": "sd",
          "layout": "diffusers", "size_mb": 1, "licence": "MIT"}, hub_entry("tiny-lcm", REPO, TINY_PATTERNS)],
    )) if argv[1] == "lcm-demo" else catalog
    assert models(catalog, *argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error: ") and message in line


def test_resolve_model_paths_names_and_errors(catalog, tiny_lcm, tmp_path):
    assert resolve_model(str(tiny_lcm), catalog) == tiny_lcm
    with pytest.raises(
        ModelNotFoundError, match=r"tiny-lcm is not downloaded yet; run `lcm-desktop models pull tiny-lcm`"
    ):
        resolve_model("tiny-lcm", catalog)
    with pytest.raises(ModelNotFoundError, match=r"No model 'tiny-lcn'.*did you mean tiny-lcm"):
        resolve_model("tiny-lcn", catalog)
    with pytest.raises(ModelNotFoundError, match="not downloaded"):
        resolve_model(REPO, catalog)  # a catalog repo id works like its id
    shutil.copytree(tiny_lcm, tmp_path / "mine")
    assert models(catalog, "import", str(tmp_path / "mine"), "--name", "my-lcm") == 0
    assert resolve_model("my-lcm", catalog).name == "my-lcm"
