"""The manifest the converter writes for the tiny LCM (its schema is tested in tests/core/test_manifest.py)."""

from __future__ import annotations

import json

from lcm_desktop.core.manifest import load_manifest


def test_the_converted_manifest_loads_and_records_passing_parity(coreml_lcm):
    manifest = load_manifest(coreml_lcm)  # validates every rule and that each file it names is there
    assert manifest.latent_shape == (1, 4, 8, 8) and manifest.family == "sd"
    assert [c.name for c in manifest.components] == ["TextEncoder", "Unet", "VAEDecoder", "VAEEncoder", "TinyDecoder"]
    assert all(c.parity and all(p.passed for p in c.parity) for c in manifest.components)
    data = json.loads((coreml_lcm / "manifest.json").read_text())
    assert data["schema_version"] == 1 and data["components"][0]["parity"][0]["passed"] is True
