"""Importing local diffusers folders; refusing pickles; imported and converted models in the store."""

from __future__ import annotations

import os
import shutil
import types

import pytest
from models.model_helpers import folder_files

from lcm_desktop.core.errors import InvalidRequestError, ModelCorruptError, ModelFormatError, UnsafeModelError
from lcm_desktop.core.model_folder import PICKLE_HINT
from lcm_desktop.core.paths import AppPaths
from lcm_desktop.models.catalog import load_catalog
from lcm_desktop.models.importer import import_model
from lcm_desktop.models.store import delete_model, installed_models


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
    (source / "unet" / "loop").symlink_to(source, target_is_directory=True)  # a link cycle
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


@pytest.fixture
def tiny_configs(tiny_sd, tmp_path):
    """``<root>/sd/``: the tiny model's configs, standing in for the shipped SD1.5 configs."""
    root = tmp_path / "configs"
    for sub in ("unet", "vae", "text_encoder", "scheduler"):
        shutil.copytree(tiny_sd / sub, root / "sd" / sub, ignore=shutil.ignore_patterns("*.safetensors"))
    shutil.copy(tiny_sd / "model_index.json", root / "sd" / "model_index.json")
    return root


def test_single_file_checkpoint_is_converted_offline_with_identical_weights(tiny_sd, tiny_configs, tmp_path,
                                                                             monkeypatch):
    import torch
    from huggingface_hub import constants
    from models.ldm_checkpoint import write_ldm_checkpoint
    from safetensors.torch import load_file
    from transformers import CLIPTokenizer

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    checkpoint = write_ldm_checkpoint(tiny_sd, tmp_path / "tiny-sd15.safetensors")
    target = import_model(checkpoint, config_root=tiny_configs)
    assert target == _imported_root() / "tiny-sd15"
    for comp, file in (("unet", "diffusion_pytorch_model.safetensors"), ("vae", "diffusion_pytorch_model.safetensors"),
                       ("text_encoder", "model.safetensors")):
        original, converted = load_file(tiny_sd / comp / file), load_file(target / comp / file)
        assert original.keys() == converted.keys(), comp
        assert all(torch.equal(original[k], converted[k]) for k in original), comp
    tokenizer = CLIPTokenizer.from_pretrained(target / "tokenizer", local_files_only=True)
    assert len(tokenizer) == 49408
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    [model] = [m for m in installed_models() if m.source == "imported"]
    assert (model.name, model.kind, model.status) == ("tiny-sd15", "base", "complete")
    assert _leftovers() == ["tiny-sd15"]


def test_sdxl_single_file_checkpoint_is_converted_with_both_text_encoders(tmp_path, monkeypatch):
    import torch
    from huggingface_hub import constants
    from models.ldm_checkpoint import write_ldm_checkpoint
    from models.model_helpers import make_tiny_sdxl_checkpoint_model
    from safetensors.torch import load_file
    from transformers import CLIPTokenizer

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = make_tiny_sdxl_checkpoint_model(tmp_path / "tiny-sdxl")
    root = tmp_path / "configs"
    for sub in ("unet", "vae", "text_encoder", "text_encoder_2", "scheduler"):
        shutil.copytree(model / sub, root / "sdxl" / sub, ignore=shutil.ignore_patterns("*.safetensors"))
    shutil.copy(model / "model_index.json", root / "sdxl" / "model_index.json")
    checkpoint = write_ldm_checkpoint(model, tmp_path / "tiny-xl.safetensors")
    target = import_model(checkpoint, name="tiny-xl", config_root=root)
    for comp, file in (("unet", "diffusion_pytorch_model.safetensors"), ("vae", "diffusion_pytorch_model.safetensors"),
                       ("text_encoder", "model.safetensors"), ("text_encoder_2", "model.safetensors")):
        original, converted = load_file(model / comp / file), load_file(target / comp / file)
        assert original.keys() == converted.keys(), comp
        assert all(torch.equal(original[k], converted[k]) for k in original), comp
    tokenizer_2 = CLIPTokenizer.from_pretrained(target / "tokenizer_2", local_files_only=True)
    assert (len(tokenizer_2), tokenizer_2.pad_token, tokenizer_2.pad_token_id) == (49408, "!", 0)
    assert [m.status for m in installed_models() if m.name == "tiny-xl"] == ["complete"]


def test_shipped_single_file_configs_match_the_reference_architectures():
    import json

    from lcm_desktop.core.paths import resource_path

    root = resource_path("configs", "single_file")
    sd_unet = json.loads((root / "sd" / "unet" / "config.json").read_text())
    assert (sd_unet["cross_attention_dim"], sd_unet["block_out_channels"], sd_unet.get("time_cond_proj_dim")) == (
        768, [320, 640, 1280, 1280], None)
    xl_unet = json.loads((root / "sdxl" / "unet" / "config.json").read_text())
    assert (xl_unet["cross_attention_dim"], xl_unet["projection_class_embeddings_input_dim"]) == (2048, 2816)
    for family in ("sd", "sdxl"):
        index = json.loads((root / family / "model_index.json").read_text())
        for component, _entry in ((k, v) for k, v in index.items() if isinstance(v, list) and v[0]):
            if not component.startswith("tokenizer"):
                assert (root / family / component).is_dir(), (family, component)


@pytest.mark.parametrize(
    "keys, expected",
    [
        ({"model.diffusion_model.x", "cond_stage_model.transformer.text_model.y"}, "sd"),
        (
            {"model.diffusion_model.x", "conditioner.embedders.1.model.z", "conditioner.embedders.0.transformer.y"},
            "sdxl",
        ),
        ({"lora_unet_down_blocks_0.lora_down.weight"}, ModelFormatError),
        (
            {
                "model.diffusion_model.x",
                "cond_stage_model.transformer.y",
                "model.diffusion_model.time_embedding.cond_proj.weight",
            },
            ModelFormatError,
        ),
        ({"something.else"}, ModelFormatError),
    ],
)
def test_checkpoint_family_detection(keys, expected):
    from lcm_desktop.models.importer import detect_family

    if expected is ModelFormatError:
        with pytest.raises(ModelFormatError, match="LoRA|not an SD 1.5 or SDXL checkpoint|guidance embedding"):
            detect_family(keys, "x.safetensors")
    else:
        assert detect_family(keys, "x.safetensors") == expected


def test_a_damaged_single_file_is_refused_before_conversion(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(ModelCorruptError, match="bad.safetensors is corrupt or incomplete"):
        import_model(bad)
    assert _leftovers() == []
