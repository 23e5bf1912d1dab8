"""Stage 2: the teacher — epsilon-prediction latent diffusion, text encoder trained jointly.

SD's scaled-linear β schedule with 1000 steps, 10 % caption dropout (empty prompt) so
classifier-free guidance works, EMA weights are the result.

Position words need one addition. SD's schedule never reaches zero signal: at t = 999 a noisy
latent still holds 0.068·x0, about one standard deviation of evidence for where the shape is.
A teacher trained only on such latents learns to read the position from that leak rather
than from the caption (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are
Flawed", show the same for brightness in SD); sampling starts from pure noise, which leaks
nothing. (The first teacher put shapes at random, 20 %; this run also has a third UNet level and
more steps, and no ablation separates the three changes.) Here, for t ≥ 900, half of
the samples get pure noise n as input, with the epsilon target that makes x̂0 the true x0,
(n − √ᾱ·x0)/√(1 − ᾱ), so at the top of the schedule the caption is the only clue. Their loss is
weighted ×10, because an x0 error there costs only SNR(t) ≈ 0.005–0.015 of itself in epsilon.
"""

from __future__ import annotations

import copy
import time

from convert.demo_model import workdir
from convert.demo_model.data import train_scenes
from convert.demo_model.latents import latent_cache
from convert.demo_model.models import build_ddpm_scheduler, build_text_encoder, build_tokenizer, build_unet, tokenize
from convert.demo_model.workdir import TEACHER_CKPT, TEACHER_FINAL, TOKENIZER_DIR, log, record_summary

SEED = 3
STEPS = 7000
BATCH = 64
LR = 6e-4
CAPTION_DROPOUT = 0.1
EMA_DECAY = 0.999
PURE_NOISE_FROM = 900  # t at and above which half of the samples see pure noise (see the docstring)
PURE_NOISE_SHARE = 0.5
PURE_NOISE_WEIGHT = 10.0


def ema_update(ema, model, decay: float) -> None:
    import torch

    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1.0 - decay)


def noised_inputs(x0, noise, t, alphas_cumprod):
    """(z_t, epsilon target, per-sample loss weight); for t ≥ PURE_NOISE_FROM, a PURE_NOISE_SHARE of
    the samples get z_t = noise (no leak of x0) and the target (noise − √ᾱ·x0)/√(1 − ᾱ)."""
    import torch

    a = alphas_cumprod[t].view(-1, 1, 1, 1)
    zt = a.sqrt() * x0 + (1 - a).sqrt() * noise
    pure = (t >= PURE_NOISE_FROM) & (torch.rand(t.shape) < PURE_NOISE_SHARE)
    p = pure.view(-1, 1, 1, 1)
    zt = torch.where(p, noise, zt)
    target = torch.where(p, (noise - a.sqrt() * x0) / (1 - a).sqrt(), noise)
    weight = torch.where(p, PURE_NOISE_WEIGHT, 1.0)
    return zt, target, weight


def train_teacher(steps: int = STEPS) -> None:
    torch = workdir.setup_torch(SEED)
    cache = latent_cache()
    tokenizer = build_tokenizer(TOKENIZER_DIR)
    ids_table = tokenize(tokenizer, [s.caption for s in train_scenes()])  # (1440, 77)
    empty_ids = tokenize(tokenizer, [""])  # (1, 77)
    text_encoder, unet = build_text_encoder(tokenizer), build_unet()
    ema_te, ema_unet = copy.deepcopy(text_encoder), copy.deepcopy(unet)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
    noise_sched = build_ddpm_scheduler()
    modules = {"unet": unet, "te": text_encoder, "ema_unet": ema_unet, "ema_te": ema_te, "opt": opt}
    start = workdir.resume(TEACHER_CKPT, modules, None, "teacher")[0]  # the data come from torch's global RNG
    latents, scene_idx = cache["latents"], cache["scene_idx"]
    n = latents.shape[0]
    meter, t0 = workdir.Meter(), time.time()
    unet.train()
    text_encoder.train()
    loss = torch.tensor(float("nan"))
    for step in range(start, steps):
        for g in opt.param_groups:
            g["lr"] = workdir.cosine_lr(step, steps, LR, warmup=200, floor=1.0)  # constant after warm-up; EMA smooths
        pick = torch.randint(0, n, (BATCH,))
        x0 = latents[pick]
        ids = ids_table[scene_idx[pick]].clone()
        drop = torch.rand(BATCH) < CAPTION_DROPOUT
        ids[drop] = empty_ids
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (BATCH,))
        zt, target, weight = noised_inputs(x0, noise, t, noise_sched.alphas_cumprod)
        cond = text_encoder(ids)[0]
        pred = unet(zt, t, cond).sample
        loss = (weight * (pred - target).pow(2)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(EMA_DECAY, (1 + step) / (10 + step))
        ema_update(ema_unet, unet, decay)
        ema_update(ema_te, text_encoder, decay)
        meter.add(loss.item())
        if (step + 1) % 100 == 0:
            log.info("teacher step %d/%d  %s", step + 1, steps, meter.line())
        if (step + 1) % 250 == 0 or step + 1 == steps:
            workdir.save_resumable(TEACHER_CKPT, modules, step + 1)
    ema_unet.save_pretrained(TEACHER_FINAL / "unet", safe_serialization=True)
    ema_te.save_pretrained(TEACHER_FINAL / "text_encoder", safe_serialization=True)
    record_summary("teacher", steps=steps, batch=BATCH, lr=LR, caption_dropout=CAPTION_DROPOUT, ema=EMA_DECAY,
                   pure_noise=f"t ≥ {PURE_NOISE_FROM}, {PURE_NOISE_SHARE:g} of samples, ×{PURE_NOISE_WEIGHT:g}",
                   wall_s=round(time.time() - t0), resumed_from=start, last_loss=round(loss.item(), 5))
    log.info("teacher: done in %.0f s", time.time() - t0)


def save_teacher_snapshot(out) -> None:
    """Write the EMA weights of the latest checkpoint as a teacher folder (for a look mid-training)."""
    workdir.setup_torch(SEED)
    tokenizer = build_tokenizer(TOKENIZER_DIR)
    te, unet = build_text_encoder(tokenizer), build_unet()
    state = workdir.load_checkpoint(TEACHER_CKPT)
    te.load_state_dict(state["ema_te"])
    unet.load_state_dict(state["ema_unet"])
    unet.save_pretrained(out / "unet", safe_serialization=True)
    te.save_pretrained(out / "text_encoder", safe_serialization=True)
