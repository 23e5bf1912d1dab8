"""manifest.json: round trip, validation, and the errors a damaged folder gives."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from lcm_desktop.core.errors import ModelCorruptError, ModelFormatError
from lcm_desktop.core.manifest import (
    Manifest,
    ParityResult,
    load_manifest,
    save_manifest,
    validate_manifest,
)


@pytest.fixture()
def manifest(coreml_lcm) -> Manifest:
    return load_manifest(coreml_lcm)


def test_round_trip(manifest, tmp_path):
    save_manifest(manifest, tmp_path)
    assert Manifest.from_dict(json.loads((tmp_path / "manifest.json").read_text())) == manifest
    assert not [p for p in tmp_path.iterdir() if p.name != "manifest.json"]  # the temp file was renamed
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["schema_version"] == 1 and data["components"][0]["parity"][0]["passed"] is True
    assert manifest.latent_shape == (1, 4, 8, 8)


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


def test_damaged_folders(coreml_lcm, tmp_path):
    with pytest.raises(ModelFormatError, match="no manifest.json"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelCorruptError, match="manifest.json is not valid JSON"):
        load_manifest(tmp_path)
    data = json.loads((coreml_lcm / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**data, "schema_version": 99}))
    with pytest.raises(ModelFormatError, match="schema version 99"):
        load_manifest(tmp_path)
    del data["components"]
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelFormatError, match="malformed"):
        load_manifest(tmp_path)
