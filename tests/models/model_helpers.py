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
