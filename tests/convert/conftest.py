"""Conversions of the tiny models, each done once per test session and shared (read-only) by the tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest


def converted(tmp_path_factory, source: Path, **options) -> Path:
    """The folder ``python -m convert`` makes of ``source`` with ``options``; converted on first use.

    Keyed under the session's base temp folder, so tests/engine reuses the same conversions.
    """
    from convert.conversion import run
    from convert.options import ConvertOptions

    key = hashlib.sha256(repr((str(source), sorted(options.items()))).encode()).hexdigest()[:12]
    out = tmp_path_factory.getbasetemp() / "coreml-conversions" / f"{Path(source).name}-{key}"
    if not (out / "manifest.json").is_file():
        run(ConvertOptions(source=source, out=out, **options))
    return out


@pytest.fixture(scope="session")
def coreml_lcm(tmp_path_factory, tiny_lcm, tiny_taesd) -> Path:
    """The tiny guidance-embedding LCM, all components and a tiny decoder, split_einsum attention, fp16."""
    return converted(tmp_path_factory, tiny_lcm, tiny_decoder=tiny_taesd)


@pytest.fixture(scope="session")
def coreml_lcm_original_6bit(tmp_path_factory, tiny_lcm) -> Path:
    """The same model with the original attention and 6-bit k-means palettization."""
    return converted(tmp_path_factory, tiny_lcm, attention="original", palettize=6)


@pytest.fixture(scope="session")
def coreml_sdxl(tmp_path_factory, tiny_sdxl) -> Path:
    """The tiny SDXL-class model (two text encoders, size conditioning), decoder only of the VAE."""
    return converted(tmp_path_factory, tiny_sdxl, components=("text_encoder", "unet", "vae_decoder"))
