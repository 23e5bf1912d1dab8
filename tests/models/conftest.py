"""Fixtures for model management: a loopback Hub, and tiny repos to serve from it."""

from __future__ import annotations

import pytest
from models.hub_server import HubServer
from models.model_helpers import folder_files


@pytest.fixture
def hub(monkeypatch):
    """A loopback Hub; huggingface_hub is switched online and pointed at it for this test only.

    huggingface_hub reads HF_HUB_OFFLINE, HF_ENDPOINT and HF_HUB_DISABLE_XET at import time
    (the suite imports it with HF_HUB_OFFLINE=1), so its constants are patched as well as the env.
    """
    from huggingface_hub import constants

    server = HubServer().start()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_repo_files(tiny_lcm) -> dict[str, bytes]:
    """The tiny LCM as a Hub repo, plus files the catalog patterns must not fetch."""
    files = folder_files(tiny_lcm)
    files["unet/diffusion_pytorch_model.bin"] = b"\x80\x02pickle that must never be fetched" * 40
    files["README.md"] = b"# tiny\n"
    return files
