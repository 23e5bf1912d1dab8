"""describe_model: one answer to "what is this folder?" for the CLI, the app and doctor."""

from __future__ import annotations

import json
import shutil

import pytest

from lcm_desktop.core.errors import ModelFormatError, ModelNotFoundError, UnsafeModelError
from lcm_desktop.core.model_info import ModelDefaults, ModelKind, describe_model


def test_a_diffusers_lcm(tiny_lcm):
    info = describe_model(tiny_lcm)
    assert (info.kind, info.family, info.name) == (ModelKind.DIFFUSERS, "sd", "tiny-lcm")
    assert info.defaults == ModelDefaults(steps=4, guidance_scale=8.5, width=64, height=64)
    assert info.guidance_embedding and not info.cfg_capable and not info.fixed_size


def test_a_plain_unet_takes_real_guidance(tiny_sd, tiny_sdxl):
    plain = describe_model(tiny_sd)
    assert plain.cfg_capable and plain.defaults.guidance_scale == 1.0
    assert describe_model(tiny_sdxl).family == "sdxl"


def test_recommendations_refine_the_defaults(tiny_lcm, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_lcm, folder)
    (folder / "lcm_desktop.json").write_text(json.dumps({
        "recommended_steps": 2, "recommended_guidance_scale": 6.0, "native_width": 128, "height": 96,
        "example_prompt": "  a red circle  ", "steps_range": [1, 8], "name": "x"}))
    assert describe_model(folder).defaults == ModelDefaults(2, 6.0, 128, 96, "a red circle")
    (folder / "lcm_desktop.json").write_text('{"recommended_steps": "many", "native_width": -5}')
    assert describe_model(folder).defaults == ModelDefaults(4, 8.5, 64, 64)
    (folder / "lcm_desktop.json").write_bytes(b"\xff\xfe not json")
    assert describe_model(folder).defaults.steps == 4


def test_the_builtin_model_ships_its_example_prompt():
    from lcm_desktop.core.paths import builtin_model_path

    info = describe_model(builtin_model_path())
    assert info.defaults.example_prompt == "a large yellow circle on a green background, top left"
    assert info.native_size == (64, 64)


def test_apple_layout_is_recognised_by_name(tmp_path):
    from lcm_desktop.core.model_info import model_kind

    folder = tmp_path / "apple"
    (folder / "Stable_Diffusion_version_x_unet.mlpackage").mkdir(parents=True)
    assert model_kind(folder) is ModelKind.APPLE_COREML and ModelKind.APPLE_COREML.is_coreml
    assert model_kind(tmp_path) is None


@pytest.mark.parametrize(("name", "error", "needle"), [
    ("missing", ModelNotFoundError, "does not exist"),
    ("x.ckpt", UnsafeModelError, "Refusing to load x.ckpt"),
    ("x.safetensors", ModelFormatError, "single file"),
    ("", ModelFormatError, "is not a model folder"),
])
def test_what_is_not_a_model_is_one_line(tmp_path, name, error, needle):
    if "." in name:
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(error, match=needle):
        describe_model(tmp_path / name)
