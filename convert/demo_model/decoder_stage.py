"""Stage 1b: sharpen the VAE decoder with the encoder frozen.

The first 600 VAE steps settle the latent space but leave the decoder blurry: small squares
and triangles come back as round blobs (the analyzer read 74 % of true shapes right after a
round trip). Training the decoder alone leaves every latent, the scaling factor, the latent
cache and so the teacher and the LCM untouched, so it can run at any time after stage 1.
The loss is stage 1's reconstruction loss plus an L1 on image gradients, which is what
corners and straight edges are made of.
"""

from __future__ import annotations

import random
import time

from convert.demo_model import common
from convert.demo_model.common import WORK, log
from convert.demo_model.data import sample_batch, train_scenes
from convert.demo_model.vae_stage import FG_WEIGHT, FINAL as VAE_FINAL, shape_mask, to_tensor

SEED = 11
STEPS = 1500
BATCH = 32
LR = 5e-4
EDGE_WEIGHT = 3.0  # a 3×3 blur of a small square then costs twice its plain reconstruction error
CKPT = WORK / "decoder" / "ckpt.pt"
FINAL = WORK / "decoder" / "final"


def _gradients(x):
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


def decoder_loss(y, x, weight):
    """Weighted L1 + MSE (as stage 1) plus L1 between the images' horizontal and vertical gradients."""
    err = (y - x).abs() + (y - x).pow(2)
    rec = (weight * err).sum() / (weight.sum() * 3)
    (yv, yh), (xv, xh) = _gradients(y), _gradients(x)
    edge = (yv - xv).abs().mean() + (yh - xh).abs().mean()
    return rec + EDGE_WEIGHT * edge, rec


def refine_decoder(steps: int = STEPS) -> None:
    torch = common.setup_torch(SEED)
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(VAE_FINAL)
    vae.encoder.requires_grad_(False).eval()
    vae.quant_conv.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    rng = random.Random(SEED)
    start, rng = common.resume(CKPT, vae, opt, rng, "decoder")
    scenes = train_scenes()
    meter, t0 = common.Meter(), time.time()
    vae.decoder.train()
    for step in range(start, steps):
        for g in opt.param_groups:
            g["lr"] = common.cosine_lr(step, steps, LR, warmup=50)
        images = sample_batch(scenes, BATCH, rng)[0]
        x = to_tensor(images)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.sample()  # samples, not means: the LCM's latents are never exact
        y = vae.decode(z).sample
        loss, rec = decoder_loss(y, x, 1.0 + FG_WEIGHT * shape_mask(images))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        meter.add(rec.item())
        if (step + 1) % 50 == 0:
            log.info("decoder step %d/%d  %s", step + 1, steps, meter.line())
        if (step + 1) % 100 == 0 or step + 1 == steps:
            common.save_resumable(CKPT, vae, opt, step + 1, rng)
    vae.eval().save_pretrained(FINAL, safe_serialization=True)  # same config, same scaling_factor
    from convert.demo_model.export import record_summary

    record_summary("decoder", steps=steps, batch=BATCH, lr=LR, edge_weight=EDGE_WEIGHT,
                   wall_s=round(time.time() - t0), resumed_from=start)
    log.info("decoder: done in %.0f s", time.time() - t0)
