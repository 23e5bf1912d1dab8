"""Stage 5: prompt adherence on the held-out captions, LCM vs teacher, written to docs/DEMO_MODEL.md.

Every held-out scene (240) is generated once per configuration with seed = 10_000 + its index,
and read back by the analyzer; accuracy is exact match per attribute. Seconds per image are
measured separately at batch size 1 (the app's case), after a warm-up call.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
from collections import Counter
from pathlib import Path

from convert.demo_model import results
from convert.demo_model.analyzer import ATTRIBUTES, analyze
from convert.demo_model.card import write_card
from convert.demo_model.data import held_out_scenes, render, to_tensor
from convert.demo_model.models import build_ddim_scheduler
from convert.demo_model.results import CEILING, Config, Kind
from convert.demo_model.ship import RECOMMENDED_GUIDANCE, RECOMMENDED_STEPS, shipped_files
from convert.demo_model.workdir import (
    DOC,
    RESULTS,
    SHIPPED,
    TEACHER_FINAL,
    TEACHER_SHIPPED,
    load_summary,
    log,
    write_text,
)

LCM_STEPS = (1, 2, 4, 8)
TEACHER_STEPS = (4, 8, 25, 50)
TEACHER_GUIDANCE = 6.0  # classifier-free guidance scale of the teacher
GUIDANCE_SWEEP = (1.0, 2.0, 4.0, 6.0, 8.0)
SEED0 = 10_000
TIMING_IMAGES = 8


def load_lcm(folder: Path = SHIPPED):
    from diffusers import LatentConsistencyModelPipeline

    pipe = LatentConsistencyModelPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_teacher(lcm):
    """StableDiffusionPipeline with DDIM around the teacher UNet and the LCM's other parts."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    folder = TEACHER_SHIPPED / "unet" if (TEACHER_SHIPPED / "unet").is_dir() else TEACHER_FINAL / "unet"
    unet = UNet2DConditionModel.from_pretrained(folder, torch_dtype=torch.float32)
    pipe = StableDiffusionPipeline(
        vae=lcm.vae, text_encoder=lcm.text_encoder, tokenizer=lcm.tokenizer, unet=unet,
        scheduler=build_ddim_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, prompts: list[str], seeds: list[int], steps: int, guidance: float):
    """(B, 64, 64, 3) float images in [0, 1]; one generator per image so batching changes nothing."""
    import torch

    gens = [torch.Generator().manual_seed(s) for s in seeds]
    with torch.no_grad():
        return pipe(prompt=prompts, num_inference_steps=steps, guidance_scale=guidance, generator=gens,
                    height=64, width=64, output_type="np").images


def score(pipe, steps: int, guidance: float, batch: int = 120) -> dict:
    scenes = held_out_scenes()
    hits = {a: 0 for a in ATTRIBUTES}
    misplaced: Counter = Counter()  # (asked, seen) positions of the misses
    t0 = time.time()
    for start in range(0, len(scenes), batch):
        chunk = scenes[start : start + batch]
        seeds = [SEED0 + start + i for i in range(len(chunk))]
        for scene, img in zip(chunk, generate(pipe, [s.caption for s in chunk], seeds, steps, guidance)):
            verdict = analyze(img)
            for attr, ok in verdict.matches(scene).items():
                hits[attr] += ok
            if verdict.position != scene.position:
                misplaced[f"{scene.position} → {verdict.position}"] += 1
    acc = {a: hits[a] / len(scenes) for a in ATTRIBUTES}
    acc["position_misses"] = dict(misplaced.most_common())
    acc["all4"] = None  # filled below
    acc["batch_wall_s"] = time.time() - t0
    acc["sec_per_image"] = time_one(pipe, steps, guidance)
    acc["all4"] = min(acc[a] for a in ("shape_colour", "background", "shape", "position"))
    return acc


def score_reconstruction(vae) -> dict:
    """The ceiling: the analyzer on VAE-reconstructed ground-truth renders of the held-out scenes."""
    import random

    import numpy as np
    import torch

    scenes = held_out_scenes()
    rng = random.Random(SEED0)
    images = np.stack([render(s, rng) for s in scenes])
    with torch.no_grad():
        y = vae.decode(vae.encode(to_tensor(images)).latent_dist.mean).sample
    recon = ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    verdicts = [analyze(r).matches(s) for r, s in zip(recon, scenes)]
    acc = {a: sum(v[a] for v in verdicts) / len(scenes) for a in ATTRIBUTES}
    acc["sec_per_image"] = None
    return acc


def time_one(pipe, steps: int, guidance: float) -> float:
    scenes = held_out_scenes()[:TIMING_IMAGES]
    generate(pipe, [scenes[0].caption], [0], steps, guidance)  # warm-up
    t0 = time.perf_counter()
    for i, s in enumerate(scenes):
        generate(pipe, [s.caption], [SEED0 + i], steps, guidance)
    return (time.perf_counter() - t0) / len(scenes)


def machine(load: float) -> str:
    """CPU, cores, torch and threads, and the 1-minute load average when the evaluation started."""
    import torch

    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        name = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        name = platform.processor() or "unknown CPU"
    threads = torch.get_num_threads()
    return (f"{name} ({os.cpu_count()} cores, load average {load:.1f} at the start), torch {torch.__version__} "
            f"CPU with {threads} thread{'s' if threads > 1 else ''}, {platform.system()}")


def evaluate() -> None:
    import torch

    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    lcm = load_lcm()
    rows: results.Rows = {CEILING: score_reconstruction(lcm.vae)}
    log.info("eval VAE ceiling: %s", rows[CEILING])
    for steps in LCM_STEPS:
        config = Config(Kind.LCM, steps, RECOMMENDED_GUIDANCE)
        rows[config] = score(lcm, steps, RECOMMENDED_GUIDANCE)
        log.info("eval %s: %s", config.label, rows[config])
    sweep: results.Rows = {}
    for g in GUIDANCE_SWEEP:
        config = Config(Kind.LCM, 4, g)
        sweep[config] = score(lcm, 4, g)
        log.info("eval sweep %s: %s", config.label, sweep[config])
    teacher = load_teacher(lcm)
    for steps in TEACHER_STEPS:
        config = Config(Kind.TEACHER, steps, TEACHER_GUIDANCE)
        rows[config] = score(teacher, steps, TEACHER_GUIDANCE)
        log.info("eval %s: %s", config.label, rows[config])
    result = {"rows": rows, "sweep": sweep, "machine": machine(load),
              "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "n_prompts": len(held_out_scenes())}
    write_text(RESULTS, results.to_json(result))
    params = {n: sum(p.numel() for p in getattr(lcm, n).parameters()) / 1e6 for n in ("unet", "text_encoder", "vae")}
    write_card(DOC, result, load_summary(), params, shipped_files(), RECOMMENDED_STEPS, RECOMMENDED_GUIDANCE)
    log.info("eval: wrote %s", DOC)
