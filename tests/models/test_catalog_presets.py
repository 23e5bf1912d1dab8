"""Catalog entries beyond LCM: their sampler preset reaches the model folder; one Hub repo may hold several
entries (Hyper-SD's LoRAs); non-commercial licences are marked in `models list`."""

from __future__ import annotations

import argparse

from models.model_helpers import TINY_PATTERNS, folder_files, hub_entry, write_catalog

from lcm_desktop.cli import models as models_command
from lcm_desktop.core.model_info import describe_model
from lcm_desktop.models.catalog import load_catalog
from lcm_desktop.models.download import pull
from lcm_desktop.models.resolve import resolve_model


def test_shipped_entries_name_real_repos_files_presets_and_licences():
    catalog = load_catalog()
    expected = {  # id: (repo, file pattern, sampler, steps)
        "tcd-lora-sd15": ("h1t/TCD-SD15-LoRA", "pytorch_lora_weights.safetensors", "tcd", 4),
        "tcd-lora-sdxl": ("h1t/TCD-SDXL-LoRA", "pytorch_lora_weights.safetensors", "tcd", 4),
        "hyper-sd15-1step": ("ByteDance/Hyper-SD", "Hyper-SD15-1step-lora.safetensors", "hyper-sd", 1),
        "hyper-sd15-8step": ("ByteDance/Hyper-SD", "Hyper-SD15-8steps-lora.safetensors", "ddim-trailing", 8),
        "hyper-sdxl-4step": ("ByteDance/Hyper-SD", "Hyper-SDXL-4steps-lora.safetensors", "ddim-trailing", 4),
        "sdxl-lightning-4step": ("ByteDance/SDXL-Lightning", "sdxl_lightning_4step_lora.safetensors",
                                 "euler-trailing", 4),
    }
    for model_id, (repo, pattern, sampler, steps) in expected.items():
        entry = catalog.get(model_id)
        assert (entry.repo_id, entry.allow_patterns, entry.sampler, entry.steps) == (repo, (pattern,), sampler, steps)
        assert entry.kind == "distill-lora" and catalog.get(entry.requires).kind == "base"
    for model_id, repo in (("sdxs-512", "IDKiro/sdxs-512-0.9"), ("sd-turbo", "stabilityai/sd-turbo"),
                           ("sdxl-turbo", "stabilityai/sdxl-turbo")):
        entry = catalog.get(model_id)
        assert (entry.repo_id, entry.sampler, entry.steps, entry.guidance) == (repo, "euler-a-trailing", 1, 0.0)
    assert {e.id for e in catalog if e.non_commercial} == {"sd-turbo", "sdxl-turbo"}
    assert catalog.get("tcd-lora-sd15").licence == "MIT" and not catalog.get("sdxs-512").non_commercial


def test_two_loras_of_one_repo_are_two_models_with_their_presets(hub, tiny_sd, tmp_path, capsys):
    from tiny_models import make_tiny_lora

    one, eight = make_tiny_lora(tiny_sd, tmp_path / "one", seed=1), make_tiny_lora(tiny_sd, tmp_path / "eight", seed=2)
    hub.add("tiny/hyper", {"Hyper-1step-lora.safetensors": one.read_bytes(),
                           "Hyper-8steps-lora.safetensors": eight.read_bytes()})
    hub.add("tiny/base", folder_files(tiny_sd))
    catalog = load_catalog(write_catalog(tmp_path / "c.json", [
        hub_entry("hyper-1", "tiny/hyper", ["Hyper-1step-lora.safetensors"], kind="distill-lora", layout="lora",
                  requires="tiny-base", sampler="hyper-sd", steps=1),
        hub_entry("hyper-8", "tiny/hyper", ["Hyper-8steps-lora.safetensors"], kind="distill-lora", layout="lora",
                  requires="tiny-base", sampler="ddim-trailing", steps=8),
        hub_entry("tiny-base", "tiny/base", TINY_PATTERNS, kind="base"),
        hub_entry("nc", "tiny/nc", ["*.json"], kind="distilled", licence="sai-nc-community")]))
    for model_id in ("tiny-base", "hyper-1", "hyper-8"):
        pull(catalog.get(model_id))
    views = {model_id: resolve_model(model_id, catalog) for model_id in ("hyper-1", "hyper-8")}
    assert views["hyper-1"] != views["hyper-8"]
    for model_id, lora in (("hyper-1", one), ("hyper-8", eight)):  # each view links its own file of the repo
        assert (views[model_id] / "lcm_lora" / "pytorch_lora_weights.safetensors").read_bytes() == lora.read_bytes()
    assert one.read_bytes() != eight.read_bytes()
    info = {k: describe_model(v) for k, v in views.items()}
    assert (info["hyper-1"].preset.name, info["hyper-1"].defaults.steps) == ("hyper-sd", 1)
    assert (info["hyper-8"].preset.name, info["hyper-8"].defaults.steps) == ("ddim-trailing", 8)
    assert describe_model(resolve_model("tiny-base", catalog)).preset.name == "lcm"  # the bare base: no view file

    parser = argparse.ArgumentParser()
    models_command.add_parser(parser.add_subparsers(dest="command"))
    assert models_command.run(parser.parse_args(["models", "list"]), catalog=catalog) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:] if line.strip()}
    assert "distilled (non-commercial)" in rows["nc"] and "non-commercial" not in rows["hyper-1"]
    assert " yes " in rows["hyper-1"] and " yes " in rows["hyper-8"]

