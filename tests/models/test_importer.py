"""Importing local diffusers folders; refusing pickles; imported and converted models in the store."""

from __future__ import annotations

import os
import shutil
import types

import pytest

from lcm_desktop.core.errors import InvalidRequestError, ModelCorruptError, ModelFormatError, UnsafeModelError
from lcm_desktop.core.model_folder import PICKLE_HINT
from lcm_desktop.core.paths import AppPaths
from lcm_desktop.models.catalog import load_catalog
from lcm_desktop.models.importer import import_model
from lcm_desktop.models.store import delete_model, installed_models
from model_helpers import folder_files


def _imported_root():
    return AppPaths.default().data / "models"


def _leftovers() -> list[str]:
    root = _imported_root()
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_import_folder_copies_weights_and_configs_but_never_pickles(tiny_lcm, tmp_path):
    source = tmp_path / "downloaded"
    shutil.copytree(tiny_lcm, source)
    (source / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x02 pickle")
    (source / ".git").mkdir()
    (source / ".git" / "HEAD").write_text("ref")
    target = import_model(source, name="my-lcm")
    assert target == _imported_root() / "my-lcm"
    assert folder_files(target) == folder_files(tiny_lcm)
    [model] = [m for m in installed_models() if m.source == "imported"]
    assert (model.name, model.kind, model.status, model.path) == ("my-lcm", "lcm", "complete", target)
    assert model.size_bytes == sum(len(v) for v in folder_files(tiny_lcm).values())
    assert _leftovers() == ["my-lcm"]
    assert delete_model("my-lcm") == model.size_bytes
    assert _leftovers() == []


def test_import_of_a_plain_sd_folder_is_a_base_named_after_the_folder(tiny_sd):
    target = import_model(tiny_sd)
    [model] = [m for m in installed_models() if m.source == "imported"]
    assert (model.name, model.kind) == (tiny_sd.name, "base") and target.name == tiny_sd.name


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".bin", ".pth"])
def test_pickle_files_are_refused_with_the_reason(tmp_path, suffix):
    checkpoint = tmp_path / f"model{suffix}"
    checkpoint.write_bytes(b"\x80\x02 pickle")
    with pytest.raises(UnsafeModelError) as info:
        import_model(checkpoint)
    assert PICKLE_HINT in str(info.value) and "can run arbitrary code" in str(info.value)
    assert _leftovers() == []


def test_a_folder_with_only_pickle_weights_is_refused(tiny_lcm, tmp_path):
    source = tmp_path / "pickled"
    shutil.copytree(tiny_lcm, source)
    unet = source / "unet" / "diffusion_pytorch_model.safetensors"
    unet.rename(unet.with_suffix(".bin"))
    with pytest.raises(UnsafeModelError, match="Refusing to load unet/diffusion_pytorch_model.bin"):
        import_model(source, name="pickled")
    assert _leftovers() == []


def test_corrupt_or_incomplete_folders_and_bad_names_leave_nothing(tiny_lcm, tmp_path):
    source = tmp_path / "broken"
    shutil.copytree(tiny_lcm, source)
    unet = source / "unet" / "diffusion_pytorch_model.safetensors"
    os.truncate(unet, unet.stat().st_size - 100)
    with pytest.raises(ModelCorruptError, match="unet/diffusion_pytorch_model.safetensors is corrupt or incomplete"):
        import_model(source)
    shutil.rmtree(source / "vae")
    with pytest.raises(ModelFormatError, match="missing vae"):
        import_model(source)
    with pytest.raises(InvalidRequestError, match="different from the catalog ids"):
        import_model(tiny_lcm, name="taesd", catalog=load_catalog())
    with pytest.raises(InvalidRequestError, match="`--name` must be 1–64 letters"):
        import_model(tiny_lcm, name="../escape")
    with pytest.raises(ModelFormatError, match="Not enough disk space to import"):
        import_model(tiny_lcm, disk_usage=lambda p: types.SimpleNamespace(free=10))
    assert _leftovers() == []
    import_model(tiny_lcm, name="once")
    with pytest.raises(InvalidRequestError, match="exists"):
        import_model(tiny_lcm, name="once")
    assert _leftovers() == ["once"]


def test_converted_coreml_folders_are_listed_and_deletable():
    folder = AppPaths.default().data / "coreml" / "converted"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{ not json")
    (folder / "Unet.mlpackage").mkdir()
    (folder / "Unet.mlpackage" / "weight.bin").write_bytes(b"0" * 1234)
    [model] = [m for m in installed_models() if m.source == "coreml"]
    assert (model.name, model.kind, model.status) == ("converted", "coreml", "corrupt")
    assert model.size_bytes == 1234 + len("{ not json")
    assert delete_model("converted") == model.size_bytes
    assert not folder.exists()
