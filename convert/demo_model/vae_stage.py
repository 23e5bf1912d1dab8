"""Stage 1: train the 8× AutoencoderKL on rendered shapes (L1 + MSE reconstruction + small KL)."""

from __future__ import annotations

import random
import time

from convert.demo_model import workdir
from convert.demo_model.data import sample_batch, shape_mask, to_tensor, train_scenes
from convert.demo_model.models import build_vae
from convert.demo_model.workdir import VAE_CKPT, VAE_FINAL, log, record_summary

SEED = 1
STEPS = 600
BATCH = 32
LR = 1e-3
FG_WEIGHT = 4.0  # extra loss weight on shape pixels: the small shapes otherwise come out last
KL_WEIGHT = 1e-5


def train_vae(steps: int = STEPS) -> None:
    torch = workdir.setup_torch(SEED)
    vae = build_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=LR, weight_decay=0.0)
    rng = random.Random(SEED)
    start, rng = workdir.resume(VAE_CKPT, {"model": vae, "opt": opt}, rng, "vae")
    scenes = train_scenes()
    meter, t0 = workdir.Meter(), time.time()
    vae.train()
    for step in range(start, steps):
        for g in opt.param_groups:
            g["lr"] = workdir.cosine_lr(step, steps, LR, warmup=50)
        images = sample_batch(scenes, BATCH, rng)[0]
        x = to_tensor(images)
        post = vae.encode(x).latent_dist
        y = vae.decode(post.sample()).sample
        weight = 1.0 + FG_WEIGHT * shape_mask(images)
        err = (y - x).abs() + (y - x).pow(2)
        rec = (weight * err).sum() / (weight.sum() * 3)
        kl = post.kl().mean() / post.mean[0].numel()
        loss = rec + KL_WEIGHT * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        meter.add(rec.item())
        if (step + 1) % 50 == 0:
            log.info("vae step %d/%d  %s  kl %.1f", step + 1, steps, meter.line(), kl.item())
        if (step + 1) % 100 == 0 or step + 1 == steps:
            workdir.save_resumable(VAE_CKPT, {"model": vae, "opt": opt}, step + 1, rng)
    finalize_vae(vae)
    record_summary("vae", steps=steps, batch=BATCH, lr=LR, kl_weight=KL_WEIGHT, wall_s=round(time.time() - t0),
                   resumed_from=start)
    log.info("vae: done in %.0f s", time.time() - t0)


def finalize_vae(vae) -> None:
    """Set ``scaling_factor`` = 1 / std of latents and save the diffusers folder."""
    torch = workdir.setup_torch(SEED + 100)
    vae.eval()
    rng = random.Random(SEED + 100)
    with torch.no_grad():
        x = to_tensor(sample_batch(train_scenes(), 512, rng)[0])
        z = vae.encode(x).latent_dist.mean
        y = vae.decode(z).sample
    std = z.std().item()
    vae.register_to_config(scaling_factor=round(1.0 / std, 5))
    err = (y - x).abs().mean().item()
    log.info("vae: latent std %.4f → scaling_factor %.5f; mean abs recon error %.4f (of 2)", std, 1.0 / std, err)
    vae.save_pretrained(VAE_FINAL, safe_serialization=True)
