"""`models import` and the converter on hostile folders: data files only, from inside the folder (issue 11)."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest
from security.hostile_helpers import edit_index, write_payload

from lcm_desktop.core.paths import AppPaths

CODE_FILES = ("payload.py", "payload.pyc", "payload.so", "payload.dylib", "run.sh", "setup.cfg", "model.ckpt",
              "scheduler/payload.py", "unet/loader.pyx", "tokenizer/evil.bat")


def _store() -> Path:
    return AppPaths.default().data / "models"


def _store_entries() -> list[str]:
    """Everything in the model store, hidden staging folders included."""
    return sorted(p.name for p in _store().iterdir()) if _store().exists() else []


def test_code_files_are_never_copied(demo_copy, marker, capsys):
    from lcm_desktop.cli import main

    for relative in CODE_FILES:
        write_payload(demo_copy / Path(relative).parent, Path(relative).stem, marker, Path(relative).suffix)
    assert main(["models", "import", str(demo_copy), "--name", "clean"]) == 0, capsys.readouterr().err
    copied = {p.relative_to(_store() / "clean").as_posix() for p in (_store() / "clean").rglob("*") if p.is_file()}
    assert copied and not copied & set(CODE_FILES)
    assert {Path(p).suffix for p in copied} <= {".json", ".safetensors", ".txt"}
    assert not marker.exists()


def test_a_folder_naming_its_own_module_is_refused(demo_copy, marker, cli_fails):
    write_payload(demo_copy, "payload", marker)
    edit_index(demo_copy, vae=["payload", "Payload"])
    assert "names payload.Payload for vae" in cli_fails("models", "import", demo_copy, "--name", "evil")
    assert _store_entries() == [] and not marker.exists()


def test_a_link_to_a_private_file_outside_is_refused(demo_copy, tmp_path, cli_fails):
    secret = tmp_path / "secret.txt"
    secret.write_text("my ssh key")
    secret.chmod(0o600)
    os.symlink(secret, demo_copy / "tokenizer" / "notes.txt")
    line = cli_fails("models", "import", demo_copy, "--name", "leak")
    assert f"demo/tokenizer/notes.txt: it links to {secret}, outside the model folder" in line
    assert _store_entries() == []


def test_a_linked_folder_outside_is_refused(demo_copy, tmp_path, cli_fails):
    outside = tmp_path / "elsewhere"
    shutil.move(str(demo_copy / "vae"), outside)
    os.symlink(outside, demo_copy / "vae")
    assert "demo/vae: it links to" in cli_fails("models", "import", demo_copy, "--name", "linked")
    assert _store_entries() == []


def test_a_link_to_dev_zero_is_refused_without_reading_it(demo_copy, cli_fails):
    os.symlink("/dev/zero", demo_copy / "README.md")
    assert "README.md: it links to /dev/zero, outside the model folder" in cli_fails("models", "import", demo_copy)
    os.unlink(demo_copy / "README.md")
    (demo_copy / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    os.symlink("/dev/zero", demo_copy / "unet" / "diffusion_pytorch_model.safetensors")
    assert "is a device, not a regular file" in cli_fails("models", "import", demo_copy)
    assert _store_entries() == []


@pytest.mark.parametrize("relative", ["README.md", "unet/config.json", "tokenizer/merges.txt"])
def test_a_fifo_in_the_folder_is_refused(demo_copy, cli_fails, relative):
    (demo_copy / relative).unlink(missing_ok=True)
    os.mkfifo(demo_copy / relative)
    assert f"{Path(relative).name} is a named pipe (FIFO), not a regular file" in cli_fails(
        "models", "import", demo_copy, "--name", "piped")
    assert _store_entries() == []


def test_a_fifo_or_socket_that_is_not_a_data_file_is_left_behind(demo_copy, tmp_path, capsys):
    import socket

    from lcm_desktop.cli import main

    os.mkfifo(demo_copy / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(demo_copy / "sock"))
    try:
        assert main(["models", "import", str(demo_copy), "--name", "ok"]) == 0, capsys.readouterr().err
    finally:
        sock.close()
    assert not (_store() / "ok" / "pipe").exists() and not (_store() / "ok" / "sock").exists()


def test_a_single_file_fifo_is_refused(tmp_path, cli_fails):
    os.mkfifo(tmp_path / "model.safetensors")
    assert "model.safetensors is a named pipe (FIFO)" in cli_fails("models", "import", tmp_path / "model.safetensors")


def test_copies_are_new_files_with_the_users_umask(demo_copy, capsys):
    from lcm_desktop.cli import main

    config = demo_copy / "unet" / "config.json"
    config.chmod(0o600)
    (demo_copy / "vae" / "config.json").chmod(0o755)
    old = os.umask(0o022)
    try:
        assert main(["models", "import", str(demo_copy), "--name", "perms"]) == 0, capsys.readouterr().err
    finally:
        os.umask(old)
    for file in ("unet/config.json", "vae/config.json", "unet/diffusion_pytorch_model.safetensors"):
        assert stat.S_IMODE((_store() / "perms" / file).stat().st_mode) == 0o644


def test_a_hugging_face_snapshot_of_links_into_blobs_still_imports(demo_copy, tmp_path, capsys):
    """The HF cache: snapshots/<rev>/… are links into ../../blobs/; links inside the repo folder are followed."""
    from lcm_desktop.cli import main

    repo = tmp_path / "hub" / "models--org--tiny"
    snapshot = repo / "snapshots" / ("0" * 40)
    (repo / "blobs").mkdir(parents=True)
    for file in sorted(p for p in demo_copy.rglob("*") if p.is_file()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / file.relative_to(demo_copy)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    assert main(["models", "import", str(snapshot), "--name", "from-hub"]) == 0, capsys.readouterr().err
    weights = _store() / "from-hub" / "unet" / "diffusion_pytorch_model.safetensors"
    assert not weights.is_symlink() and weights.read_bytes() == (
        demo_copy / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()


def test_a_full_disk_during_import_is_one_line_and_leaves_nothing(demo_copy, monkeypatch, cli_fails):
    from lcm_desktop.core import model_files

    real_copy = model_files.copy_data_file
    calls = []

    def fill_up(real, dest, size):
        calls.append(dest)
        if len(calls) == 5:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_copy(real, dest, size)

    monkeypatch.setattr("lcm_desktop.models.importer.copy_data_file", fill_up)
    line = cli_fails("models", "import", demo_copy, "--name", "full")
    assert "The disk filled up while importing" in line and "free some disk space" in line
    assert _store_entries() == []


# -- the converter reads the same kind of folder ----------------------------------------------
def test_the_converter_refuses_unknown_classes_and_copies_only_data(demo_copy, marker, tmp_path):
    from convert.source import copy_tokenizers_and_scheduler, inspect_source
    from lcm_desktop.core.errors import UnsafeModelError

    write_payload(demo_copy / "tokenizer", "payload", marker)
    write_payload(demo_copy / "tokenizer", "native", marker, ".so")
    source = inspect_source(demo_copy, ("unet", "text_encoder"))
    out = tmp_path / "out"
    out.mkdir()
    assert copy_tokenizers_and_scheduler(source, out) == ("tokenizer",)
    assert sorted(p.name for p in (out / "tokenizer").iterdir()) == [
        "merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"]
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    os.symlink(secret, demo_copy / "tokenizer" / "added.txt")
    with pytest.raises(UnsafeModelError, match="tokenizer/added.txt: it links to"):
        copy_tokenizers_and_scheduler(source, tmp_path / "out2")
    edit_index(demo_copy, unet=["os", "system"])
    with pytest.raises(UnsafeModelError, match="names os.system for unet"):
        inspect_source(demo_copy, ("unet",))
    assert not marker.exists()
