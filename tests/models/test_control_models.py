"""Control models in model management: catalog entries, `models import` of a control folder, name resolution."""

from __future__ import annotations

import pytest
from tiny_controls import make_tiny_adapter

from lcm_desktop.core.errors import ModelNotFoundError, UnsafeModelError
from lcm_desktop.core.paths import resource_path
from lcm_desktop.models.catalog import load_catalog
from lcm_desktop.models.importer import import_model
from lcm_desktop.models.resolve import resolve_control
from lcm_desktop.models.store import ModelStore


def test_catalog_lists_control_models_with_licences():
    controls = [e for e in load_catalog() if e.kind in ("controlnet", "t2i-adapter")]
    ids = {e.id for e in controls}
    assert {"controlnet-sd15-scribble", "controlnet-sd15-lineart", "controlnet-sd15-canny",
            "controlnet-sd15-softedge", "controlnet-sdxl-canny", "t2i-adapter-sdxl-lineart"} <= ids
    assert all(e.layout == "control" and e.licence and e.allow_patterns for e in controls)
    assert {e.family for e in controls} == {"sd", "sdxl"}


def test_import_a_control_folder_then_use_it_by_name(tiny_lcm, tmp_path):
    source = make_tiny_adapter(tiny_lcm, tmp_path / "my-adapter")
    (source / "evil.py").write_text("raise SystemExit")
    target = import_model(source)
    assert target.name == "my-adapter" and not (target / "evil.py").exists()
    model = ModelStore().find("my-adapter")
    assert model is not None and model.kind == "t2i-adapter" and model.status.value == "complete"
    assert resolve_control("my-adapter") == target


def test_a_pickled_control_folder_is_refused(tmp_path):
    folder = tmp_path / "cn"
    folder.mkdir()
    (folder / "config.json").write_text('{"_class_name": "ControlNetModel"}')
    (folder / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(UnsafeModelError, match="pickle"):
        import_model(folder)


def test_unknown_and_not_downloaded_controls_say_what_to_do():
    with pytest.raises(ModelNotFoundError, match="models pull controlnet-sd15-scribble"):
        resolve_control("controlnet-sd15-scribble")
    with pytest.raises(ModelNotFoundError, match="did you mean controlnet-sd15-scribble"):
        resolve_control("controlnet-sd15-scribbel")


def test_the_built_in_control_resolves_when_shipped():
    folder = resource_path("models", "lcm-demo-scribble")
    if not folder.is_dir():
        pytest.skip("the built-in scribble control is not shipped in this checkout")
    assert resolve_control("lcm-demo-scribble") == folder
