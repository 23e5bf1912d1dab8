"""Helpers shared by the model-management tests (catalog files, repo contents)."""

from __future__ import annotations

import json
from pathlib import Path


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file of a folder, keyed by its posix path relative to the folder."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write_catalog(path: Path, entries: list[dict]) -> Path:
    path.write_text(json.dumps({"schema": 1, "models": entries}), encoding="utf-8")
    return path


def hub_entry(model_id: str, repo_id: str, patterns: list[str], **extra) -> dict:
    entry = {
        "id": model_id, "name": model_id, "kind": "lcm", "source": "hub", "family": "sd", "layout": "diffusers",
        "repo_id": repo_id, "revision": "main", "allow_patterns": patterns, "size_mb": 1, "licence": "MIT",
        "resolution": 64, "steps": 4, "guidance": 6.0,
    }
    entry.update(extra)
    return entry


TINY_PATTERNS = [
    "model_index.json", "scheduler/*.json", "text_encoder/*.json", "text_encoder/*.safetensors",
    "tokenizer/*.json", "tokenizer/merges.txt", "unet/*.json", "unet/*.safetensors",
    "vae/*.json", "vae/*.safetensors",
]


def make_tiny_sdxl_checkpoint_model(path: Path, seed: int = 0) -> Path:
    """A tiny SDXL whose two text encoders differ in width (32 and 48), as SDXL's do (768 and 1280).

    diffusers' single-file loader tells CLIP-L from OpenCLIP-G by that width, so the shared tiny
    SDXL (both 32 wide) cannot stand in for an SDXL checkpoint.
    """
    import tiny_models
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    path = Path(path)
    torch.manual_seed(seed)
    config_1 = tiny_models._tokenizer_and_text_config(path / "_tok", hidden=32)
    config_2 = tiny_models._tokenizer_and_text_config(path / "_tok", hidden=48, projection_dim=24)
    tokenizer = CLIPTokenizer.from_pretrained(path / "_tok")
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), block_out_channels=(16, 32), layers_per_block=1,
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + 24, cross_attention_dim=32 + 48, norm_num_groups=8,
    )
    pipe = StableDiffusionXLPipeline(
        vae=tiny_models._vae(), text_encoder=CLIPTextModel(config_1),
        text_encoder_2=CLIPTextModelWithProjection(config_2), tokenizer=tokenizer, tokenizer_2=tokenizer,
        unet=unet, scheduler=tiny_models._euler_scheduler(), force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(path, safe_serialization=True)
    tiny_models._rmtree(path / "_tok")
    return path
