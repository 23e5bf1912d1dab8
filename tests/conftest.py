"""Test-wide rules: no network, no real user folders, tiny models built once per session."""

from __future__ import annotations

import os
import socket
from pathlib import Path

# Before huggingface_hub/diffusers are imported anywhere: never reach the Hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
import tiny_models

_LOOPBACK = ("127.", "::1", "localhost")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Only loopback connections (our own test servers) are allowed."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family == socket.AF_UNIX or str(host).startswith(_LOOPBACK):
            return real_connect(self, address)
        raise OSError(f"network access blocked in tests: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _app_home(tmp_path, monkeypatch):
    """Every test gets its own app folders (data, cache, output, logs) under tmp_path."""
    home = tmp_path / "app-home"
    monkeypatch.setenv("LCM_DESKTOP_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    return home


@pytest.fixture(scope="session")
def tiny_lcm(tmp_path_factory) -> Path:
    """A guidance-embedding LCM (time_cond_proj_dim=32), SD1.5-shaped, 64×64 native."""
    return tiny_models.make_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-lcm")


@pytest.fixture(scope="session")
def tiny_lcm_clip_mean(tmp_path_factory) -> Path:
    """The tiny LCM with a text encoder whose states have a mean away from 0, as a trained CLIP's (emphasis tests)."""
    return tiny_models.make_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-lcm-clip-mean", clip_mean=0.5)


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> Path:
    """A plain SD UNet (as with an LCM-LoRA fused in) whose folder ships an Euler scheduler."""
    return tiny_models.make_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd", time_cond_proj_dim=None)


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory) -> Path:
    return tiny_models.make_tiny_sdxl(tmp_path_factory.mktemp("models") / "tiny-sdxl")


@pytest.fixture(scope="session")
def tiny_sdxl_lcm(tmp_path_factory) -> Path:
    """An SDXL-class UNet with a guidance embedding (like latent-consistency/lcm-sdxl)."""
    return tiny_models.make_tiny_sdxl(tmp_path_factory.mktemp("models") / "tiny-sdxl-lcm", time_cond_proj_dim=32)


@pytest.fixture(scope="session")
def tiny_taesd(tmp_path_factory) -> Path:
    return tiny_models.make_tiny_taesd(tmp_path_factory.mktemp("models") / "tiny-taesd")


# Conversions of the tiny models, each done once per test session and shared (read-only) by the tests.
@pytest.fixture(scope="session")
def coreml_lcm(tmp_path_factory, tiny_lcm, tiny_taesd) -> Path:
    """The tiny guidance-embedding LCM, all components and a tiny decoder, split_einsum attention, fp16."""
    return tiny_models.converted(tmp_path_factory, tiny_lcm, tiny_decoder=tiny_taesd)


@pytest.fixture(scope="session")
def coreml_lcm_original_6bit(tmp_path_factory, tiny_lcm) -> Path:
    """The same model's UNet and VAE decoder (the parts with attention) with the original attention and 6-bit
    k-means palettization (the text encoder and VAE encoder would add ~5 s and no check)."""
    return tiny_models.converted(tmp_path_factory, tiny_lcm, attention="original", palettize=6,
                                 components=("unet", "vae_decoder"))


@pytest.fixture(scope="session")
def coreml_sdxl(tmp_path_factory, tiny_sdxl) -> Path:
    """The tiny SDXL-class model (two text encoders, size conditioning), decoder only of the VAE."""
    return tiny_models.converted(tmp_path_factory, tiny_sdxl, components=("text_encoder", "unet", "vae_decoder"))


@pytest.fixture(scope="session")
def tiny_sd_lcm_lora(tmp_path_factory, tiny_sd) -> Path:
    """A random LCM-LoRA for the plain tiny SD UNet (``…/pytorch_lora_weights.safetensors``)."""
    return tiny_models.make_tiny_lcm_lora(tiny_sd, tmp_path_factory.mktemp("lora-sd"))


@pytest.fixture(scope="session")
def coreml_sd_lcm_lora(tmp_path_factory, tiny_sd, tiny_sd_lcm_lora) -> Path:
    """The plain tiny SD UNet with that LCM-LoRA fused in, converted for two rows (classic CFG in one call, as
    Apple's default UNet batch); one conversion for the LoRA tests and the two-row tests."""
    return tiny_models.converted(tmp_path_factory, tiny_sd, lcm_lora=tiny_sd_lcm_lora.parent, batch_size=2,
                                 components=("unet",))


@pytest.fixture
def apple_layout_folder(coreml_lcm, tmp_path) -> Path:
    """The converted tiny LCM laid out as Apple's ml-stable-diffusion does: named packages, vocab.json and
    merges.txt, no manifest.json."""
    import shutil

    folder = tmp_path / "coreml-stable-diffusion-tiny" / "split_einsum" / "packages"
    folder.mkdir(parents=True)
    for ours, apples in (("TextEncoder", "text_encoder"), ("Unet", "unet"), ("VAEDecoder", "vae_decoder")):
        shutil.copytree(coreml_lcm / f"{ours}.mlpackage", folder / f"Stable_Diffusion_version_tiny_{apples}.mlpackage")
    for file in ("vocab.json", "merges.txt"):
        shutil.copy(coreml_lcm / file, folder / file)
    return folder
