"""The shipped catalog and its validation."""

from __future__ import annotations

import pytest
from models.model_helpers import hub_entry, write_catalog

from lcm_desktop.core.errors import ModelFormatError, ModelNotFoundError
from lcm_desktop.models.catalog import load_catalog

REQUIRED_REPOS = {
    "SimianLuo/LCM_Dreamshaper_v7", "latent-consistency/lcm-lora-sdv1-5", "latent-consistency/lcm-lora-sdxl",
    "stabilityai/stable-diffusion-xl-base-1.0", "latent-consistency/lcm-ssd-1b", "latent-consistency/lcm-sdxl",
    "madebyollin/taesd", "madebyollin/taesdxl",
}


def test_shipped_catalog_has_the_required_models_builtin_first():
    catalog = load_catalog()
    first = next(iter(catalog))
    assert (first.id, first.name, first.kind, first.source) == ("lcm-demo", "Built-in demo", "lcm", "builtin")
    assert REQUIRED_REPOS <= {e.repo_id for e in catalog}
    dreamshaper = catalog.by_repo("SimianLuo/LCM_Dreamshaper_v7")
    assert (dreamshaper.kind, dreamshaper.licence, dreamshaper.resolution, dreamshaper.tiny_decoder) == (
        "lcm", "MIT", 768, "taesd")
    lora = catalog.get("lcm-lora-sdv1-5")
    assert lora.kind == "lcm-lora" and catalog.get(lora.requires).repo_id  # a popular SD1.5 base
    assert catalog.get(catalog.get("lcm-lora-sdxl").requires).repo_id == "stabilityai/stable-diffusion-xl-base-1.0"
    assert {e.kind for e in catalog} == {"lcm", "lcm-lora", "base", "tiny-decoder", "distill-lora", "distilled"}
    for entry in catalog:
        if entry.downloadable:
            assert all(p.endswith((".safetensors", ".json", ".txt")) for p in entry.allow_patterns), entry.id
            assert entry.size_mb > 0 and entry.licence


def test_unknown_id_suggests_close_ids():
    with pytest.raises(ModelNotFoundError, match="did you mean taesdxl, taesd"):
        load_catalog().get("taesdx")


@pytest.mark.parametrize(
    "bad, message",
    [({"kind": "checkpoint"}, "kind must be one of"),
     ({"allow_patterns": ["unet/*"]}, "could fetch files other than safetensors"),
     ({"allow_patterns": ["*.ckpt"]}, "could fetch files other than safetensors"),
     ({"requires": "nowhere"}, "requires must name a base entry"),
     ({"sampler": "dpm++"}, "sampler must name a sampler preset"),
     ({"colour": "red"}, "unknown fields")],
)
def test_invalid_catalogs_are_refused(tmp_path, bad, message):
    path = write_catalog(tmp_path / "c.json", [hub_entry("x", "a/b", ["*.json"], **bad)])
    with pytest.raises(ModelFormatError, match=message):
        load_catalog(path)


def test_duplicate_ids_are_refused(tmp_path):
    path = write_catalog(tmp_path / "c.json", [hub_entry("x", "a/b", ["*.json"]), hub_entry("x", "a/c", ["*.json"])])
    with pytest.raises(ModelFormatError, match="repeats ids"):
        load_catalog(path)
