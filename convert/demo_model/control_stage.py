"""Stage ``train-control``: a scribble ControlNet for the built-in LCM (outline of the shape → the scene).

The ControlNet starts as ``ControlNetModel.from_unet`` of the shipped LCM UNet (its encoder and mid block;
the zero convolutions make it start as "no control"), and the LCM UNet, text encoder and VAE stay frozen.
No teacher: per step, a training scene and its outline are drawn, the scene is encoded by the shipped VAE,
noised to a point of the LCM's skipping grid (t ∈ {19, 39, …, 999}; for t ≥ 900 half of the samples start
from pure noise, as in the earlier stages, so the outline rather than a leak of x0 decides where the shape
goes), and the LCM's consistency output f(z, t) = c_skip·z + c_out·x̂0 — what one LCM step returns —
computed with the ControlNet's residuals must equal the clean latent (L2). The guidance w reaches the UNet
through its embedding as in sampling (g ∈ [2, 8]); diffusers' ControlNet pipeline gives the ControlNet no
``timestep_cond``, so neither does training.

Half of the captions name a position the picture does not have (the shape stays at the outline): the
drawn outline, not the words, is what the model learns to follow for where the shape goes. Shipped as a
diffusers ``ControlNetModel`` folder in ``resources/models/lcm-demo-scribble``.
"""

from __future__ import annotations

import json
import random
import shutil
import time

import numpy as np

from convert.demo_model import workdir
from convert.demo_model.data import POSITIONS, Scene, to_tensor, train_scenes
from convert.demo_model.distill_stage import SKIP, _bc, boundary_scalings, guidance_embedding
from convert.demo_model.models import build_ddpm_scheduler, tokenize
from convert.demo_model.outlines import render_pair
from convert.demo_model.teacher_stage import noised_inputs
from convert.demo_model.workdir import (
    REPO_MODELS,
    SHIPPED,
    SHIPPED_SUMMARY_NAME,
    SUMMARY,
    WORK,
    log,
    record_summary,
)

SEED = 7
STEPS = 4000
BATCH = 32
LR = 1e-3
LR_FLOOR = 0.1
GUIDANCE_RANGE = (2.0, 8.0)
WRONG_WORDS = 0.5  # share of captions whose position word is not where the outline (and the shape) is
N_PAIRS = 6000  # rendered and encoded once
CONDITIONING_CHANNELS = (16, 16, 32, 32)  # 64 px → 8 latent cells (three stride-2 convolutions), ~25 k params
CONTROL_CKPT = WORK / "control" / "ckpt.pt"
CONTROL_FINAL = WORK / "control" / "final"
CONTROL_SHIPPED = REPO_MODELS / "lcm-demo-scribble"


def load_frozen_lcm():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    unet = UNet2DConditionModel.from_pretrained(SHIPPED / "unet").eval().requires_grad_(False)
    te = CLIPTextModel.from_pretrained(SHIPPED / "text_encoder").eval().requires_grad_(False)
    vae = AutoencoderKL.from_pretrained(SHIPPED / "vae").eval().requires_grad_(False)
    tok = CLIPTokenizer.from_pretrained(str(SHIPPED / "tokenizer"))
    return unet, te, vae, tok


def controlnet_from_lcm(unet):
    """``ControlNetModel.from_unet`` with the LCM's weights; its ``cond_proj`` (guidance) has no place there."""
    from diffusers import ControlNetModel

    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=CONDITIONING_CHANNELS,
                                    load_weights_from_unet=False)
    te_state = {k: v for k, v in unet.time_embedding.state_dict().items() if not k.startswith("cond_proj")}
    net.conv_in.load_state_dict(unet.conv_in.state_dict())
    net.time_embedding.load_state_dict(te_state)
    net.down_blocks.load_state_dict(unet.down_blocks.state_dict())
    net.mid_block.load_state_dict(unet.mid_block.state_dict())
    return net


def training_pairs(vae, scenes: list[Scene], n: int, rng: random.Random):
    """(latents (n, 4, 8, 8), outlines (n, 3, 64, 64) in [0, 1], scene index (n,))."""
    import torch

    idx = [rng.randrange(len(scenes)) for _ in range(n)]
    latents, outlines = [], []
    with torch.no_grad():
        for start in range(0, n, 500):
            pairs = [render_pair(scenes[i], rng) for i in idx[start : start + 500]]
            imgs = np.stack([p[0] for p in pairs])
            latents.append(vae.encode(to_tensor(imgs)).latent_dist.mean * vae.config.scaling_factor)
            outlines.append(torch.from_numpy(np.stack([p[1] for p in pairs])).permute(0, 3, 1, 2).float() / 255.0)
    return torch.cat(latents), torch.cat(outlines), torch.tensor(idx)


def wrong_word_index(scenes: list[Scene]) -> list[list[int]]:
    """For each scene, the indices of the same scene with every other position word."""
    where = {s: i for i, s in enumerate(scenes)}
    return [[where[Scene(s.shape_colour, s.shape, s.background, s.size, p)] for p in POSITIONS if p != s.position]
            for s in scenes]


def train_control(steps: int = STEPS) -> None:
    torch = workdir.setup_torch(SEED)
    unet, text_encoder, vae, tokenizer = load_frozen_lcm()
    scenes = train_scenes()
    with torch.no_grad():
        embeds = text_encoder(tokenize(tokenizer, [s.caption for s in scenes]))[0]  # (1440, 77, D)
    t_data = time.time()
    latents, outlines, scene_idx = training_pairs(vae, scenes, N_PAIRS, random.Random(SEED))
    log.info("control: %d pairs in %.0f s", N_PAIRS, time.time() - t_data)
    others = torch.tensor(wrong_word_index(scenes))  # (1440, 4)
    net = controlnet_from_lcm(unet)
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=0.0)
    alphas = build_ddpm_scheduler().alphas_cumprod  # (1000,)
    modules = {"net": net, "opt": opt}
    start = workdir.resume(CONTROL_CKPT, modules, None, "control")[0]
    n_grid = 1000 // SKIP
    meter, t0 = workdir.Meter(), time.time()
    net.train()
    for step in range(start, steps):
        for g in opt.param_groups:
            g["lr"] = workdir.cosine_lr(step, steps, LR, warmup=100, floor=LR_FLOOR)
        pick = torch.randint(0, latents.shape[0], (BATCH,))
        x0, cond_img, sidx = latents[pick], outlines[pick], scene_idx[pick]
        wrong = torch.rand(BATCH) < WRONG_WORDS
        sidx = torch.where(wrong, others[sidx, torch.randint(0, others.shape[1], (BATCH,))], sidx)
        cond = embeds[sidx]
        t = (torch.randint(0, n_grid, (BATCH,)) + 1) * SKIP - 1
        w_emb = guidance_embedding(torch.empty(BATCH).uniform_(*GUIDANCE_RANGE) - 1.0)
        zt = noised_inputs(x0, torch.randn_like(x0), t, alphas)[0]
        down, mid = net(zt, t, encoder_hidden_states=cond, controlnet_cond=cond_img, return_dict=False)
        eps = unet(zt, t, cond, timestep_cond=w_emb, down_block_additional_residuals=down,
                   mid_block_additional_residual=mid).sample
        a = _bc(alphas[t])
        x0_hat = (zt - (1 - a).sqrt() * eps) / a.sqrt()
        c_skip, c_out = boundary_scalings(t)
        pred = _bc(c_skip) * zt + _bc(c_out) * x0_hat
        loss = (pred - x0).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        meter.add(loss.item())
        if (step + 1) % 25 == 0:
            log.info("control step %d/%d  %s", step + 1, steps, meter.line())
        if (step + 1) % 200 == 0 or step + 1 == steps:
            workdir.save_resumable(CONTROL_CKPT, modules, step + 1)
    net.eval()
    tmp = CONTROL_FINAL.with_name("final.part")
    shutil.rmtree(tmp, ignore_errors=True)
    net.save_pretrained(tmp, safe_serialization=True)
    shutil.rmtree(CONTROL_FINAL, ignore_errors=True)
    tmp.rename(CONTROL_FINAL)
    record_summary(
        "control", steps=steps, batch=BATCH, lr=LR, lr_schedule=f"cosine to {LR_FLOOR:g}×", pairs=N_PAIRS,
        wrong_position_words=WRONG_WORDS, guidance_range=list(GUIDANCE_RANGE), loss="l2 on f(z, t) vs x0",
        wall_s=round(time.time() - t0), resumed_from=start,
    )
    log.info("control: done in %.0f s", time.time() - t0)


def ship_control() -> None:
    """Copy the trained ControlNet into ``resources/models/lcm-demo-scribble`` (renamed into place) and add its
    settings to the shipped model's ``training.json`` (so ``control-eval`` on a fresh clone can describe it)."""
    tmp = CONTROL_SHIPPED.with_name(CONTROL_SHIPPED.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(CONTROL_FINAL, tmp)
    shutil.rmtree(CONTROL_SHIPPED, ignore_errors=True)
    tmp.rename(CONTROL_SHIPPED)
    shipped_summary = SHIPPED / SHIPPED_SUMMARY_NAME
    summary = json.loads(shipped_summary.read_text()) if shipped_summary.is_file() else {}
    summary["control"] = json.loads(SUMMARY.read_text()).get("control", {}) if SUMMARY.is_file() else {}
    workdir.write_text(shipped_summary, json.dumps(summary, indent=2) + "\n")
    log.info("control: shipped %s", CONTROL_SHIPPED)
