"""Catalog models that are not a plain diffusers folder: fp16-variant files, UNet-only LCMs, LoRAs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from models.model_helpers import TINY_PATTERNS, folder_files, hub_entry, write_catalog

from lcm_desktop.core.errors import ModelNotFoundError
from lcm_desktop.core.paths import AppPaths
from lcm_desktop.models.catalog import load_catalog
from lcm_desktop.models.download import pull
from lcm_desktop.models.resolve import resolve_model
from lcm_desktop.models.store import delete_model

FP16_PATTERNS = ["model_index.json", "scheduler/*.json", "*/config.json", "*/*.fp16.safetensors",
                 "tokenizer/*.json", "tokenizer/merges.txt"]


def _image(folder):
    from lcm_desktop.core.request import GenerationRequest
    from lcm_desktop.engine.engine import Engine

    return np.asarray(Engine(folder).generate(GenerationRequest("a blue square", steps=2, seed=3)).images[0])


def _fp16_names(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k.replace(".safetensors", ".fp16.safetensors"): v for k, v in files.items()}


def test_fp16_variant_files_are_loaded_through_a_view(hub, tiny_lcm, tmp_path):
    hub.add("tiny/fp16", _fp16_names(folder_files(tiny_lcm)))
    catalog = load_catalog(write_catalog(tmp_path / "c.json", [
        hub_entry("tiny-fp16", "tiny/fp16", FP16_PATTERNS, variant="fp16")]))
    snapshot = pull(catalog.get("tiny-fp16"))
    view = resolve_model("tiny-fp16", catalog)
    assert view.parent == AppPaths.default().data / "views"
    assert (view / "unet" / "diffusion_pytorch_model.safetensors").resolve() == (
        snapshot / "unet" / "diffusion_pytorch_model.fp16.safetensors").resolve()
    assert resolve_model("tiny-fp16", catalog) == view
    np.testing.assert_array_equal(_image(view), _image(tiny_lcm))
    delete_model("tiny-fp16", catalog)
    assert not view.exists()


def test_a_unet_only_lcm_is_assembled_with_its_base(hub, tiny_lcm, tiny_sd, tmp_path):
    unet = tiny_lcm / "unet"
    hub.add("tiny/lcm-unet", {"config.json": (unet / "config.json").read_bytes(),
                              "diffusion_pytorch_model.fp16.safetensors":
                                  (unet / "diffusion_pytorch_model.safetensors").read_bytes()})
    hub.add("tiny/base", folder_files(tiny_sd))
    catalog = load_catalog(write_catalog(tmp_path / "c.json", [
        hub_entry("tiny-lcm-unet", "tiny/lcm-unet", ["config.json", "*.fp16.safetensors"], layout="unet",
                  requires="tiny-base", variant="fp16"),
        hub_entry("tiny-base", "tiny/base", TINY_PATTERNS, kind="base")]))
    pull(catalog.get("tiny-lcm-unet"))
    with pytest.raises(ModelNotFoundError, match=r"tiny-base \(needed by tiny-lcm-unet\) is not downloaded yet"):
        resolve_model("tiny-lcm-unet", catalog)
    pull(catalog.get("tiny-base"))
    view = resolve_model("tiny-lcm-unet", catalog)
    assert (view / "unet" / "config.json").read_bytes() == (unet / "config.json").read_bytes()
    assert (view / "vae" / "config.json").read_bytes() == (tiny_sd / "vae" / "config.json").read_bytes()

    by_hand = tmp_path / "by-hand"
    shutil.copytree(tiny_sd, by_hand)
    shutil.rmtree(by_hand / "unet")
    shutil.copytree(unet, by_hand / "unet")
    np.testing.assert_array_equal(_image(view), _image(by_hand))


def test_a_lora_and_its_base_are_one_usable_model(hub, tiny_sd, tmp_path):
    from tiny_models import make_tiny_lora

    from lcm_desktop.core.request import GenerationRequest
    from lcm_desktop.engine.engine import Engine
    from lcm_desktop.engine.loaders import TorchLoader

    lora = make_tiny_lora(tiny_sd, tmp_path / "lora")
    hub.add("tiny/lora", {"pytorch_lora_weights.safetensors": lora.read_bytes()})
    hub.add("tiny/base", folder_files(tiny_sd))
    catalog = load_catalog(write_catalog(tmp_path / "c.json", [
        hub_entry("tiny-lora", "tiny/lora", ["*.safetensors"], kind="lcm-lora", layout="lora", requires="tiny-base"),
        hub_entry("tiny-base", "tiny/base", TINY_PATTERNS, kind="base")]))
    pull(catalog.get("tiny-lora"))
    with pytest.raises(ModelNotFoundError, match="tiny-base"):
        resolve_model("tiny-lora", catalog)  # the base is not there yet
    pull(catalog.get("tiny-base"))
    view = resolve_model("tiny-lora", catalog)
    request = GenerationRequest("a blue square", steps=2, seed=3, guidance_scale=1.0)
    fused = np.asarray(Engine(view).generate(request).images[0])
    np.testing.assert_array_equal(
        fused, np.asarray(Engine(TorchLoader(tiny_sd, lora=lora)).generate(request).images[0])
    )
    assert not np.array_equal(fused, np.asarray(Engine(tiny_sd).generate(request).images[0]))
