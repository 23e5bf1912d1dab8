"""Confinement (issue 25 item 1): what we read from a folder a user hands us is a regular file inside it, capped.

Hostile fixtures are built here: links to a private file and to /dev/zero, FIFOs (read without the check, each
would hang the test until its timeout), an 8 GB sparse caption, manifest paths that climb out of the folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from lcm_desktop.core.errors import ModelFormatError, TrainingError, UnsafeModelError
from lcm_desktop.core.manifest import load_manifest
from lcm_desktop.core.model_files import check_confined_tree, copy_confined_tree, read_confined
from lcm_desktop.training.data import MAX_CAPTION_CHARS, load_training_set


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "private" / "id_rsa"
    path.parent.mkdir()
    path.write_text("PRIVATE KEY")
    return path


def _model(tmp_path) -> Path:
    base = tmp_path / "base"
    (base / "unet").mkdir(parents=True)
    (base / "text_encoder").mkdir()
    (base / "model_index.json").write_text("{}")
    (base / "unet" / "config.json").write_text("{}")
    (base / "text_encoder" / "config.json").write_text("{}")
    return base


# -- train-style --full: the base model's copy ------------------------------------------------------
def test_the_base_copy_copies_data_files_and_skips_the_unet(tmp_path):
    base = _model(tmp_path)
    (base / "run.py").write_text("print('code is never copied')")
    assert copy_confined_tree(base, tmp_path / "out", skip_dirs={"unet"}) == 4  # two "{}" files
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file()) == [
        "model_index.json", "text_encoder/config.json"]


@pytest.mark.parametrize("hostile", ["private", "dev-zero", "fifo"])
def test_the_base_copy_refuses_links_out_and_fifos(tmp_path, secret, hostile):
    base = _model(tmp_path)
    target = base / "text_encoder" / "tokenizer.json"
    if hostile == "private":
        target.symlink_to(secret)
    elif hostile == "dev-zero":
        target.symlink_to("/dev/zero")
    else:
        os.mkfifo(target)
    error = ModelFormatError if hostile == "fifo" else UnsafeModelError
    with pytest.raises(error, match="named pipe" if hostile == "fifo" else "outside the model folder"):
        copy_confined_tree(base, tmp_path / "out")


def test_train_full_refuses_a_hostile_base_before_any_step(tmp_path, secret, monkeypatch):
    from lcm_desktop.training import trainer

    base = _model(tmp_path)
    (base / "text_encoder" / "tokenizer.json").symlink_to(secret)
    monkeypatch.setattr(trainer, "_Run", lambda *args: pytest.fail("the model was loaded"))
    with pytest.raises(UnsafeModelError, match="outside the model folder"):
        trainer.train(trainer.TrainConfig(tmp_path, base, "hostile-base", full=True))


# -- training pictures and captions --------------------------------------------------------------
def _pictures(tmp_path, count=2) -> Path:
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(count):
        Image.new("RGB", (32, 32), (200, 30, 30)).save(folder / f"p{i}.png")
        (folder / f"p{i}.txt").write_text(f"a red square {i}")
    return folder


@pytest.mark.parametrize("hostile", ["private", "fifo", "dev-zero"])
def test_a_caption_linked_out_or_a_fifo_stops_before_training(tmp_path, secret, hostile):
    folder = _pictures(tmp_path)
    caption = folder / "p1.txt"
    caption.unlink()
    if hostile == "fifo":
        os.mkfifo(caption)
    else:
        caption.symlink_to(secret if hostile == "private" else Path("/dev/zero"))
    with pytest.raises(TrainingError, match="The caption p1.txt cannot be used") as info:
        load_training_set(folder, 32)
    assert "PRIVATE KEY" not in str(info.value)


def test_an_8_gb_caption_is_read_only_as_far_as_a_caption_goes(tmp_path):
    folder = _pictures(tmp_path)
    with open(folder / "p0.txt", "r+b") as handle:
        handle.write(b"huge " * 300)
        handle.truncate(8 * 2**30)  # sparse: no disk used; read whole, it was 8 GB of memory
    data = load_training_set(folder, 32)
    assert len(data.captions[0]) <= MAX_CAPTION_CHARS and data.captions[0].startswith("huge huge")
    assert read_confined(folder, folder / "p0.txt", 10, truncate=True) == b"huge huge "


def test_a_picture_linked_out_of_the_folder_is_skipped_as_unreadable(tmp_path):
    folder = _pictures(tmp_path)
    outside = tmp_path / "elsewhere.png"
    Image.new("RGB", (32, 32), (0, 0, 255)).save(outside)
    (folder / "p2.png").symlink_to(outside)
    (folder / "p2.txt").write_text("a blue square")
    data = load_training_set(folder, 32)
    assert len(data) == 2 and data.skipped_unreadable == 1 and "a blue square" not in data.captions


# -- converted Core ML folders ------------------------------------------------------------------
@pytest.fixture
def coreml_folder(tmp_path) -> Path:
    from core.test_manifest import manifest as manifest_fixture  # the tests' small valid manifest

    from lcm_desktop.core.manifest import save_manifest

    folder = tmp_path / "coreml"
    folder.mkdir()
    save_manifest(manifest_fixture.__wrapped__(), folder)
    for name in ("TextEncoder", "Unet", "VAEDecoder"):
        weights = folder / f"{name}.mlpackage" / "Data" / "com.apple.CoreML" / "weights"
        weights.mkdir(parents=True)
        (weights / "weight.bin").write_bytes(b"\0" * 64)
    (folder / "scheduler").mkdir()
    (folder / "scheduler" / "scheduler_config.json").write_text("{}")
    assert load_manifest(folder).name
    return folder


def _edit_manifest(folder: Path, **changes) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("hostile", ["weights-private", "weights-dev-zero", "weights-fifo", "package-outside",
                                     "scheduler-outside", "tokenizer-outside"])
def test_a_converted_folder_that_leads_outside_or_holds_a_fifo_is_refused(coreml_folder, tmp_path, secret, hostile):
    weights = coreml_folder / "Unet.mlpackage" / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    if hostile.startswith("weights-"):
        weights.unlink()
        if hostile == "weights-fifo":
            os.mkfifo(weights)
        else:
            weights.symlink_to(secret if hostile == "weights-private" else Path("/dev/zero"))
    elif hostile == "package-outside":
        (tmp_path / "Elsewhere.mlpackage").mkdir()
        data = json.loads((coreml_folder / "manifest.json").read_text())
        data["components"][1]["file"] = "../Elsewhere.mlpackage"
        (coreml_folder / "manifest.json").write_text(json.dumps(data))
    elif hostile == "scheduler-outside":
        _edit_manifest(coreml_folder, scheduler_config=str(secret))
    else:
        _edit_manifest(coreml_folder, tokenizers=["../private"])
    with pytest.raises(ModelFormatError, match="named pipe" if hostile == "weights-fifo" else "outside the coreml"):
        load_manifest(coreml_folder)


def test_the_reference_executor_reads_no_package_with_a_link_out(tmp_path, secret):
    package = tmp_path / "X.mlpackage"
    (package / "Data").mkdir(parents=True)
    (package / "Data" / "model.mlmodel").symlink_to(secret)
    from lcm_desktop.mlprogram.loader import load_program

    with pytest.raises(UnsafeModelError, match="outside the X.mlpackage folder"):
        load_program(package)
    assert check_confined_tree(tmp_path, "private") == secret.parent
