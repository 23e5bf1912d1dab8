"""Stage 3: Latent Consistency Distillation (arXiv 2310.04378, Algorithm 1 with a DDIM solver).

Per step: pick n on the skipping-step grid (k = 20: t ∈ {19, 39, …, 999}), noise a latent to
t_{n+k}, take one DDIM step of the frozen teacher's CFG PF-ODE (guidance scale g, i.e. w = g − 1)
back to t_n, and ask the student at t_{n+k} to agree with the EMA target at t_n. As in the
teacher's training, for t_{n+k} ≥ 900 half of the samples start from pure noise (sampling
starts there too), so the caption, not a leak of x0, decides where the shape goes. Both predict
epsilon; the consistency function is f(z, t) = c_skip(t)·z + c_out(t)·x̂0(z, t) with the same
c_skip/c_out as diffusers' LCMScheduler (timestep_scaling 10, sigma_data 0.5), so the
pipeline samples exactly what was trained. w reaches the student through the guidance
embedding (``timestep_cond``) as in LatentConsistencyModelPipeline.
"""

from __future__ import annotations

import copy
import time

from convert.demo_model import workdir
from convert.demo_model.data import train_scenes
from convert.demo_model.latents import latent_cache
from convert.demo_model.models import (
    SCHEDULER_CONFIG,
    TIME_COND_PROJ_DIM,
    build_ddpm_scheduler,
    build_unet,
    tokenize,
)
from convert.demo_model.teacher_stage import ema_update, noised_inputs
from convert.demo_model.workdir import DISTILL_CKPT, DISTILL_FINAL, TEACHER_FINAL, TOKENIZER_DIR, log, record_summary

SEED = 4
STEPS = 3000
BATCH = 48
LR = 3e-4
LR_FLOOR = 0.1  # cosine decay to 10 %: the last, small steps settle the EMA target that ships
SKIP = 20  # k: 1000 // original_inference_steps
GUIDANCE_RANGE = (2.0, 8.0)  # g sampled uniformly; w = g - 1 is embedded
EMA_DECAY = 0.95
SIGMA_DATA = 0.5
TIMESTEP_SCALING = SCHEDULER_CONFIG["timestep_scaling"]


def boundary_scalings(t):
    """c_skip, c_out of diffusers' LCMScheduler.get_scalings_for_boundary_condition_discrete."""
    scaled = t.float() * TIMESTEP_SCALING
    c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
    c_out = scaled / (scaled**2 + SIGMA_DATA**2) ** 0.5
    return c_skip, c_out


def guidance_embedding(w, dim: int = TIME_COND_PROJ_DIM):
    """(B,) w → (B, dim); the same function the LCM pipeline uses for ``timestep_cond``."""
    from diffusers.pipelines.latent_consistency_models.pipeline_latent_consistency_text2img import (
        LatentConsistencyModelPipeline,
    )

    return LatentConsistencyModelPipeline.get_guidance_scale_embedding(None, w, embedding_dim=dim)


def _bc(x):
    return x.view(-1, 1, 1, 1)


def consistency_fn(unet, z, t, cond, w_emb, alphas_cumprod):
    """f(z, t): c_skip·z + c_out·x̂0 from the UNet's epsilon."""
    eps = unet(z, t, cond, timestep_cond=w_emb).sample
    a = _bc(alphas_cumprod[t])
    x0 = (z - (1 - a).sqrt() * eps) / a.sqrt()
    c_skip, c_out = boundary_scalings(t)
    return _bc(c_skip) * z + _bc(c_out) * x0


def load_frozen_teacher():
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    unet = UNet2DConditionModel.from_pretrained(TEACHER_FINAL / "unet").eval().requires_grad_(False)
    te = CLIPTextModel.from_pretrained(TEACHER_FINAL / "text_encoder").eval().requires_grad_(False)
    return unet, te


def student_from_teacher(teacher_unet):
    """Same UNet plus ``time_embedding.cond_proj`` (zero-initialised: starts exactly as the teacher)."""
    import torch

    student = build_unet(TIME_COND_PROJ_DIM)
    missing, unexpected = student.load_state_dict(teacher_unet.state_dict(), strict=False)
    if unexpected or set(missing) != {"time_embedding.cond_proj.weight"}:
        raise RuntimeError(f"teacher/student mismatch: missing {missing}, unexpected {unexpected}")
    torch.nn.init.zeros_(student.time_embedding.cond_proj.weight)
    return student


def distill(steps: int = STEPS) -> None:
    torch = workdir.setup_torch(SEED)
    from transformers import CLIPTokenizer

    cache = latent_cache()
    teacher, text_encoder = load_frozen_teacher()
    tokenizer = CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))
    with torch.no_grad():
        embeds = text_encoder(tokenize(tokenizer, [s.caption for s in train_scenes()]))[0]  # (1440, 77, D)
        empty = text_encoder(tokenize(tokenizer, [""]))[0]  # (1, 77, D)
    student = student_from_teacher(teacher)
    target = copy.deepcopy(student).requires_grad_(False)
    opt = torch.optim.AdamW(student.parameters(), lr=LR, weight_decay=0.0)
    alphas = build_ddpm_scheduler().alphas_cumprod  # (1000,)
    modules = {"student": student, "target": target, "opt": opt}
    start = workdir.resume(DISTILL_CKPT, modules, None, "distill")[0]  # the data come from torch's global RNG
    latents, scene_idx = cache["latents"], cache["scene_idx"]
    n_grid = 1000 // SKIP
    meter, t0 = workdir.Meter(), time.time()
    student.train()
    for step in range(start, steps):
        for g in opt.param_groups:
            g["lr"] = workdir.cosine_lr(step, steps, LR, warmup=100, floor=LR_FLOOR)
        pick = torch.randint(0, latents.shape[0], (BATCH,))
        x0 = latents[pick]
        cond = embeds[scene_idx[pick]]
        t = (torch.randint(0, n_grid, (BATCH,)) + 1) * SKIP - 1  # t_{n+k} ∈ {19, …, 999}
        t_prev = (t - SKIP).clamp(min=0)  # t_n
        g = torch.empty(BATCH).uniform_(*GUIDANCE_RANGE)
        w_emb = guidance_embedding(g - 1.0)
        a_t, a_prev = _bc(alphas[t]), _bc(alphas[t_prev])
        zt = noised_inputs(x0, torch.randn_like(x0), t, alphas)[0]  # pure noise for some t ≥ 900, as the teacher
        with torch.no_grad():
            eps_c, eps_u = teacher(
                torch.cat([zt, zt]), torch.cat([t, t]), torch.cat([cond, empty.expand_as(cond)])
            ).sample.chunk(2)
            eps = eps_u + _bc(g) * (eps_c - eps_u)
            x0_hat = (zt - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            z_prev = a_prev.sqrt() * x0_hat + (1 - a_prev).sqrt() * eps  # DDIM step t_{n+k} → t_n
            tgt = consistency_fn(target, z_prev, t_prev, cond, w_emb, alphas)
        pred = consistency_fn(student, zt, t, cond, w_emb, alphas)
        loss = (pred - tgt).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        ema_update(target, student, EMA_DECAY)
        meter.add(loss.item())
        if (step + 1) % 50 == 0:
            log.info("distill step %d/%d  %s", step + 1, steps, meter.line())
        if (step + 1) % 200 == 0 or step + 1 == steps:
            workdir.save_resumable(DISTILL_CKPT, modules, step + 1)
    target.save_pretrained(DISTILL_FINAL / "unet", safe_serialization=True)
    record_summary(
        "distill",
        steps=steps,
        batch=BATCH,
        lr=LR,
        lr_schedule=f"cosine to {LR_FLOOR:g}×",
        skip=SKIP,
        guidance_range=list(GUIDANCE_RANGE),
        ema=EMA_DECAY,
        loss="l2",
        wall_s=round(time.time() - t0),
        resumed_from=start,
    )
    log.info("distill: done in %.0f s", time.time() - t0)
