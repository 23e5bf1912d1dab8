"""manifest.json (core/manifest.py): round trip, validation, and the errors a damaged folder gives.

Plain data on a literal manifest; tests/convert/test_convert_manifest.py checks the one the converter writes.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from lcm_desktop.core.errors import ModelCorruptError, ModelFormatError
from lcm_desktop.core.manifest import (
    ComponentSpec,
    Manifest,
    ParityResult,
    SourceInfo,
    TensorSpec,
    load_manifest,
    save_manifest,
    validate_manifest,
)


def _passed(output: str) -> tuple[ParityResult, ...]:
    return (ParityResult("traced_vs_eager", output, "relative_error", 2e-6, 1e-3),)


@pytest.fixture()
def manifest() -> Manifest:
    """What the converter writes for a tiny SD1.5-class LCM at 64×64 (shapes as Apple's layout has them)."""
    return Manifest(
        name="tiny-lcm",
        family="sd",
        source=SourceInfo(path="/models/tiny-lcm", content_hash="ab" * 32, tiny_decoder="/models/tiny-taesd"),
        components=(
            ComponentSpec("TextEncoder", "TextEncoder.mlpackage", (TensorSpec("input_ids", (1, 77)),),
                          (TensorSpec("last_hidden_state", (1, 77, 32)), TensorSpec("pooled_outputs", (1, 32))),
                          size_bytes=1_234, sha256="cd" * 32, parity=_passed("last_hidden_state")),
            ComponentSpec("Unet", "Unet.mlpackage",
                          (TensorSpec("sample", (1, 4, 8, 8)), TensorSpec("timestep", (1,)),
                           TensorSpec("encoder_hidden_states", (1, 32, 1, 77)), TensorSpec("timestep_cond", (1, 32))),
                          (TensorSpec("noise_pred", (1, 4, 8, 8)),), size_bytes=56_789, parity=_passed("noise_pred")),
            ComponentSpec("VAEDecoder", "VAEDecoder.mlpackage", (TensorSpec("z", (1, 4, 8, 8)),),
                          (TensorSpec("image", (1, 3, 64, 64)),), precision="float32", parity=_passed("image")),
        ),
        attention="split_einsum",
        precision="float16",
        palettization_bits=6,
        width=64,
        height=64,
        batch_size=1,
        in_channels=4,
        vae_scale_factor=8,
        vae_scaling_factor=0.18215,
        time_cond_proj_dim=32,
        sample_size=8,
        vae_latents_mean=(0.1, -0.2, 0.3, 0.0),
        vae_latents_std=(1.0, 0.9, 1.1, 1.0),
        converter_version="0.1.0",
        created="2026-11-30T12:00:00Z",
        notes=("split_einsum attention for the Neural Engine",),
    )


def test_round_trip(manifest, tmp_path):
    save_manifest(manifest, tmp_path)
    assert Manifest.from_dict(json.loads((tmp_path / "manifest.json").read_text())) == manifest
    assert not [p for p in tmp_path.iterdir() if p.name != "manifest.json"]  # the temp file was renamed
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["schema_version"] == 1 and data["components"][1]["parity"][0]["passed"] is True
    assert data["components"][1]["inputs"][0] == {"name": "sample", "shape": [1, 4, 8, 8], "dtype": "float32"}
    assert manifest.latent_shape == (1, 4, 8, 8)


def test_a_folder_missing_a_named_file_is_incomplete(manifest, tmp_path):
    save_manifest(manifest, tmp_path)
    for rel in ("TextEncoder.mlpackage", "Unet.mlpackage", "VAEDecoder.mlpackage", "scheduler/scheduler_config.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).mkdir() if rel.endswith(".mlpackage") else (tmp_path / rel).write_text("{}")
    assert load_manifest(tmp_path) == manifest
    (tmp_path / "Unet.mlpackage").rmdir()
    with pytest.raises(ModelFormatError, match=r"Unet\.mlpackage is missing"):
        load_manifest(tmp_path)


def test_parity_result_direction():
    assert ParityResult("coreml_vs_torch", "image", "psnr_db", 36.0, 35.0).passed
    assert not ParityResult("coreml_vs_torch", "image", "psnr_db", 30.0, 35.0).passed
    assert ParityResult("traced_vs_eager", "image", "relative_error", 1e-6, 1e-3).passed
    assert not ParityResult("traced_vs_eager", "image", "relative_error", 1e-2, 1e-3).passed


@pytest.mark.parametrize("change, message", [
    ({"family": "sd3"}, "family must be one of"),
    ({"attention": "flash"}, "attention must be one of"),
    ({"palettization_bits": 3}, "palettization_bits"),
    ({"width": 100}, "not a multiple of 8"),
    ({"max_prompt_chunks": 0}, "max_prompt_chunks must be a whole number from 1 to 8 or null, got 0"),
    ({"max_prompt_chunks": "3"}, "max_prompt_chunks must be"),
    ({"sampler": "dpm++"}, "sampler must name a sampler preset"),
])
def test_invalid_fields(manifest, change, message):
    with pytest.raises(ModelFormatError, match=message):
        validate_manifest(replace(manifest, **change))


def test_invalid_components(manifest):
    unet = manifest.require("Unet")
    bad_dtype = replace(unet, inputs=(replace(unet.inputs[0], dtype="float64"),) + unet.inputs[1:])
    with pytest.raises(ModelFormatError, match="Unet.sample has dtype 'float64'"):
        validate_manifest(replace(manifest, components=(bad_dtype,)))
    failed = replace(unet, parity=(ParityResult("coreml_vs_torch", "noise_pred", "psnr_db", 20.0, 35.0),))
    with pytest.raises(ModelFormatError, match="failed its coreml_vs_torch check"):
        validate_manifest(replace(manifest, components=(failed,)))
    with pytest.raises(ModelFormatError, match="listed twice"):
        validate_manifest(replace(manifest, components=(unet, unet)))
    with pytest.raises(ModelFormatError, match="has no VAEEncoder"):
        replace(manifest, components=(unet,)).require("VAEEncoder")


def test_damaged_folders(manifest, tmp_path):
    with pytest.raises(ModelFormatError, match="no manifest.json"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelCorruptError, match="manifest.json is not valid JSON"):
        load_manifest(tmp_path)
    data = manifest.to_dict()
    (tmp_path / "manifest.json").write_text(json.dumps({**data, "schema_version": 99}))
    with pytest.raises(ModelFormatError, match="schema version 99"):
        load_manifest(tmp_path)
    del data["components"]
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelFormatError, match="malformed"):
        load_manifest(tmp_path)
