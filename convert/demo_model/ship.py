"""Stage 4 (``export``): assemble the shipped diffusers folder ``resources/models/lcm-demo`` (and the
teacher's UNet) from the stages' results in the work folder.

Written into a temporary folder and renamed into place, so a half-written model never shows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from convert.demo_model.data import vocabulary
from convert.demo_model.models import MAX_LENGTH, build_lcm_scheduler, build_tokenizer
from convert.demo_model.workdir import (
    DISTILL_FINAL,
    REPO,
    SHIPPED,
    SHIPPED_SUMMARY_NAME,
    TEACHER_FINAL,
    TEACHER_SHIPPED,
    TOKENIZER_DIR,
    VAE_FINAL,
    load_summary,
    log,
)
from lcm_desktop.core.clip_vocab import word_level_vocab, write_tokenizer_files

RECOMMENDED_STEPS = 4
RECOMMENDED_GUIDANCE = 6.0  # guidance_scale (w = g − 1 embedded); chosen on the eval's guidance sweep
SIZE_BUDGET = 20 * 1024 * 1024


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)


def safetensors_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*.safetensors"))


def shipped_files() -> dict[str, int]:
    """Size in bytes of every shipped weights file, by its path in the repository (for the model card)."""
    return {p.relative_to(REPO).as_posix(): p.stat().st_size
            for folder in (SHIPPED, TEACHER_SHIPPED) for p in sorted(folder.rglob("*.safetensors"))}


def ship() -> None:
    import torch
    from diffusers import AutoencoderKL, LatentConsistencyModelPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.set_num_threads(1)
    tmp = SHIPPED.with_name(SHIPPED.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = build_tokenizer(TOKENIZER_DIR)
    pipe = LatentConsistencyModelPipeline(
        vae=AutoencoderKL.from_pretrained(VAE_FINAL),
        text_encoder=CLIPTextModel.from_pretrained(TEACHER_FINAL / "text_encoder"),
        tokenizer=tokenizer,
        # Stored in fp16 (both UNets fit the 20 MB budget that way); diffusers and the engine load
        # them as fp32 unless asked otherwise, and the evaluation below runs those shipped weights.
        unet=UNet2DConditionModel.from_pretrained(DISTILL_FINAL / "unet").to(torch.float16),
        scheduler=build_lcm_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(tmp, safe_serialization=True)
    # Our own word-level tokenizer files, exactly as lcm_desktop.core.clip_vocab writes them.
    shutil.rmtree(tmp / "tokenizer")
    write_tokenizer_files(tmp / "tokenizer", *word_level_vocab(vocabulary()), max_length=MAX_LENGTH)
    recommended = {
        "name": "Built-in demo",
        "native_width": 64,
        "native_height": 64,
        "recommended_steps": RECOMMENDED_STEPS,
        "recommended_guidance_scale": RECOMMENDED_GUIDANCE,
        "steps_range": [1, 8],
        "licence": "MIT",
        "card": "docs/DEMO_MODEL.md",
        "example_prompt": "a large yellow circle on a green background, top left",
        # `generate --control IMAGE` alone: the scribble ControlNet trained for this model (control_stage.py)
        "control": {"model": "lcm-demo-scribble", "preprocess": "scribble"},
    }
    (tmp / "lcm_desktop.json").write_text(json.dumps(recommended, indent=2) + "\n")
    (tmp / SHIPPED_SUMMARY_NAME).write_text(json.dumps(load_summary(), indent=2) + "\n")
    _replace_dir(tmp, SHIPPED)
    size = safetensors_bytes(SHIPPED)
    log.info("export: %s, %.2f MB of safetensors", SHIPPED, size / 1e6)
    ship_teacher(size)


def ship_teacher(shipped_bytes: int) -> None:
    """The teacher's UNet (fp16) beside the LCM, if the 20 MB budget allows; it shares the LCM's other parts."""
    import torch
    from diffusers import UNet2DConditionModel

    tmp = TEACHER_SHIPPED.with_name(TEACHER_SHIPPED.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    unet = UNet2DConditionModel.from_pretrained(TEACHER_FINAL / "unet").to(torch.float16)
    unet.save_pretrained(tmp / "unet", safe_serialization=True)
    if shipped_bytes + safetensors_bytes(tmp) > SIZE_BUDGET:
        log.info("export: teacher UNet does not fit the %d MB budget; it stays in %s", SIZE_BUDGET >> 20,
                 TEACHER_FINAL)
        shutil.rmtree(tmp)
        return
    (tmp / "README.md").write_text(
        "# lcm-demo teacher (evaluation only)\n\nThe epsilon-prediction UNet (fp16) that `lcm-demo` was distilled "
        "from. It shares `lcm-demo`'s tokenizer, text encoder and VAE. Used by `python -m convert.demo_model eval`; "
        "not loadable on its own.\n"
    )
    _replace_dir(tmp, TEACHER_SHIPPED)
    log.info("export: teacher UNet → %s", TEACHER_SHIPPED)
