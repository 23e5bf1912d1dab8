"""Stage 4: assemble the shipped diffusers folder ``resources/models/lcm-demo`` (and the teacher's UNet).

Written into a temporary folder and renamed into place, so a half-written model never shows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from convert.demo_model.common import SHIPPED, TEACHER_SHIPPED, WORK, log

RECOMMENDED_STEPS = 4
RECOMMENDED_GUIDANCE = 6.0  # guidance_scale (w = g − 1 embedded); chosen on the eval's guidance sweep
TEACHER_GUIDANCE = 6.0  # classifier-free guidance scale of the teacher in the evaluation
SIZE_BUDGET = 20 * 1024 * 1024
SUMMARY = WORK / "summary.json"
SHIPPED_SUMMARY_NAME = "training.json"  # the stages' settings, shipped so `eval` on a fresh clone can write the card


def load_summary() -> dict:
    """The training stages' settings: this machine's work folder, else the copy shipped with the model."""
    for path in (SUMMARY, SHIPPED / SHIPPED_SUMMARY_NAME):
        if path.is_file():
            return json.loads(path.read_text())
    return {}


def record_summary(stage: str, **values) -> None:
    """Remember a stage's settings and wall time for the model card."""
    data = json.loads(SUMMARY.read_text()) if SUMMARY.is_file() else {}
    data[stage] = values
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(json.dumps(data, indent=2))


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


def export() -> None:
    import torch
    from diffusers import AutoencoderKL, LatentConsistencyModelPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    from convert.demo_model.data import vocabulary
    from convert.demo_model.distill_stage import FINAL as STUDENT
    from convert.demo_model.models import MAX_LENGTH, build_lcm_scheduler, build_tokenizer
    from convert.demo_model.teacher_stage import FINAL as TEACHER
    from convert.demo_model.vae_stage import FINAL as VAE

    torch.set_num_threads(1)
    tmp = SHIPPED.with_name(SHIPPED.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = build_tokenizer(WORK / "tokenizer")
    pipe = LatentConsistencyModelPipeline(
        vae=AutoencoderKL.from_pretrained(VAE),
        text_encoder=CLIPTextModel.from_pretrained(TEACHER / "text_encoder"),
        tokenizer=tokenizer,
        # Stored in fp16 (both UNets fit the 20 MB budget that way); diffusers and the engine load
        # them as fp32 unless asked otherwise, and the evaluation below runs those shipped weights.
        unet=UNet2DConditionModel.from_pretrained(STUDENT / "unet").to(torch.float16),
        scheduler=build_lcm_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(tmp, safe_serialization=True)
    # Our own word-level tokenizer files, exactly as lcm_desktop.core.clip_vocab writes them.
    from lcm_desktop.core.clip_vocab import word_level_vocab, write_tokenizer_files

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
    }
    (tmp / "lcm_desktop.json").write_text(json.dumps(recommended, indent=2) + "\n")
    (tmp / SHIPPED_SUMMARY_NAME).write_text(json.dumps(load_summary(), indent=2) + "\n")
    _replace_dir(tmp, SHIPPED)
    size = safetensors_bytes(SHIPPED)
    log.info("export: %s, %.2f MB of safetensors", SHIPPED, size / 1e6)
    export_teacher(size)


def export_teacher(shipped_bytes: int) -> None:
    """The teacher's UNet (fp16) beside the LCM, if the 20 MB budget allows; it shares the LCM's other parts."""
    from diffusers import UNet2DConditionModel

    from convert.demo_model.teacher_stage import FINAL as TEACHER

    import torch

    tmp = TEACHER_SHIPPED.with_name(TEACHER_SHIPPED.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    unet = UNet2DConditionModel.from_pretrained(TEACHER / "unet").to(torch.float16)
    unet.save_pretrained(tmp / "unet", safe_serialization=True)
    if shipped_bytes + safetensors_bytes(tmp) > SIZE_BUDGET:
        log.info("export: teacher UNet does not fit the %d MB budget; it stays in %s", SIZE_BUDGET >> 20, TEACHER)
        shutil.rmtree(tmp)
        return
    (tmp / "README.md").write_text(
        "# lcm-demo teacher (evaluation only)\n\nThe epsilon-prediction UNet (fp16) that `lcm-demo` was distilled "
        "from. It shares `lcm-demo`'s tokenizer, text encoder and VAE. Used by `python -m convert.demo_model eval`; "
        "not loadable on its own.\n"
    )
    _replace_dir(tmp, TEACHER_SHIPPED)
    log.info("export: teacher UNet → %s", TEACHER_SHIPPED)
