"""Training set for the latent stages: rendered training scenes encoded once by the trained VAE."""

from __future__ import annotations

import random

from convert.demo_model import workdir
from convert.demo_model.data import render, to_tensor, train_scenes
from convert.demo_model.workdir import LATENTS, VAE_FINAL, log

SEED = 2
N_IMAGES = 16000


def load_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(VAE_FINAL).eval()


def latent_cache() -> dict:
    """{"latents": (N, 4, 8, 8) scaled latents, "scene_idx": (N,) index into train_scenes()}; built once."""
    import numpy as np
    import torch

    state = workdir.load_checkpoint(LATENTS)
    if state is not None:
        return state
    vae = load_vae()
    scenes = train_scenes()
    rng = random.Random(SEED)
    idx = [rng.randrange(len(scenes)) for _ in range(N_IMAGES)]
    chunks = []
    with torch.no_grad():
        for start in range(0, N_IMAGES, 500):
            imgs = np.stack([render(scenes[i], rng) for i in idx[start : start + 500]])
            chunks.append(vae.encode(to_tensor(imgs)).latent_dist.mean * vae.config.scaling_factor)
    latents = torch.cat(chunks)
    log.info("latent cache: %s, std %.3f", tuple(latents.shape), latents.std().item())
    state = {"latents": latents, "scene_idx": torch.tensor(idx)}
    workdir.save_checkpoint(LATENTS, state)
    return state
