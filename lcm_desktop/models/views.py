"""Folders the engine can load for catalog models, made of symlinks (nothing copied).

fp16-variant files, UNet-only LCMs (a base plus the LCM's UNet) and an LCM-LoRA with its base are
presented as ordinary diffusers folders under ``<app data>/views/``; the weights stay in the
Hugging Face cache.  Split from ``store.py``, which says what is installed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..core.atomic import publish_dir
from ..core.errors import ModelCorruptError, ModelNotFoundError
from ..core.paths import AppPaths, builtin_model_path
from .catalog import Catalog, CatalogEntry
from .disk import format_size
from .installed import COMPLETE, CORRUPT, InstalledModel
from .store import VIEWS_DIR, ModelStore, _folder_status, entry_weights


def usable_folder(entry: CatalogEntry, catalog: Catalog | None = None, paths: AppPaths | None = None,
                  cache_dir: Path | None = None, *, store: ModelStore | None = None) -> Path:
    """A diffusers folder the engine can load for a catalog model (raises a one-line ``LcmError``).

    fp16-variant files (``*.fp16.safetensors``) and UNet-only LCMs (a base plus the LCM's UNet)
    are presented through a view: a folder of symlinks with diffusers' default file names,
    under ``<app data>/views/``.  Nothing is copied; the weights stay in the Hugging Face cache.
    """
    store = store or ModelStore(catalog, paths, cache_dir)
    catalog, paths = store.catalog, store.paths
    model = _require_complete(entry, store)
    if entry.layout == "lora":
        # Base + LCM-LoRA as one model: the base's components and the LoRA under lcm_lora/, which
        # the engine fuses into the UNet when it loads the folder.
        base_entry = catalog.get(entry.requires or "")
        base = _require_complete(base_entry, store, needed_by=entry.id)
        lora_files = entry_weights(entry, Path(model.path))  # type: ignore[arg-type]
        if len(lora_files) != 1:
            raise ModelCorruptError(f"{entry.id} should hold one .safetensors LoRA file; delete and pull it again.")
        parts = dict(_components(base.path))  # type: ignore[arg-type]
        parts["lcm_lora"] = lora_files[0]
        key = [entry.id, (model.commit or "")[:12], (base.commit or "")[:12]]
        return _build_view(paths.data / VIEWS_DIR / "-".join(key), parts, _recommendations(entry))
    if entry.layout == "decoder" or entry.source == "builtin":
        return model.path  # type: ignore[return-value]
    parts: dict[str, Path] = {}
    key = [entry.id, (model.commit or "")[:12]]
    if entry.layout == "unet":
        base_entry = catalog.get(entry.requires or "")
        base = _require_complete(base_entry, store, needed_by=entry.id)
        parts.update(_components(base.path))  # type: ignore[arg-type]
        parts["unet"] = model.path  # type: ignore[assignment]
        key.append((base.commit or "")[:12])
    else:
        parts.update(_components(model.path))  # type: ignore[arg-type]
        renamed = any(_default_name(f.name) != f.name for p in parts.values() if p.is_dir() for f in p.iterdir())
        if not renamed and entry.sampler is None:
            return model.path  # type: ignore[return-value]
    return _build_view(paths.data / VIEWS_DIR / "-".join(key), parts, _recommendations(entry))


def _recommendations(entry: CatalogEntry) -> dict | None:
    """What a view's ``lcm_desktop.json`` says (core.model_info reads it): the entry's sampler preset, steps and
    guidance, so a base + TCD-LoRA view samples with TCD; ``None`` for an LCM entry (the folder says enough)."""
    if entry.sampler is None:
        return None
    values = {"sampler": entry.sampler, "steps": entry.steps, "guidance_scale": entry.guidance}
    return {k: v for k, v in values.items() if v is not None}


def _require_complete(entry: CatalogEntry, store: ModelStore, needed_by: str | None = None) -> InstalledModel:
    model = store.find(entry.id)
    for_whom = f" (needed by {needed_by})" if needed_by else ""
    if model is None or model.path is None:
        if entry.source == "builtin":
            raise ModelNotFoundError(
                f"The built-in model is missing from {builtin_model_path()}; reinstall LCM Desktop."
            )
        raise ModelNotFoundError(
            f"{entry.id}{for_whom} is not downloaded yet; run `lcm-desktop models pull {entry.id}` "
            f"(about {format_size(entry.size_bytes)})."
        )
    if model.status is CORRUPT:
        raise ModelCorruptError(f"{entry.id}{for_whom} is damaged: {model.detail}")
    if model.status is not COMPLETE:
        raise ModelNotFoundError(f"{entry.id}{for_whom} is incomplete: {model.detail}")
    return model


def _components(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if not p.name.startswith(".")}


def _default_name(name: str) -> str:
    """``diffusion_pytorch_model.fp16.safetensors`` → ``diffusion_pytorch_model.safetensors``."""
    stem, _, suffix = name.rpartition(".")
    if suffix == "safetensors" and stem.count(".") == 1:
        return f"{stem.split('.')[0]}.{suffix}"
    return name


def _build_view(target: Path, parts: dict[str, Path], recommendations: dict | None = None) -> Path:
    if target.is_dir():
        status, _ = _folder_status(target)
        if status is COMPLETE:
            return target

    def build(staging: Path) -> None:
        for name, source in parts.items():
            if source.is_dir():
                (staging / name).mkdir()
                for file in source.iterdir():
                    _link(file, staging / name / _default_name(file.name))
            elif name == "lcm_lora":  # the engine looks for lcm_lora/pytorch_lora_weights.safetensors
                (staging / name).mkdir()
                _link(source, staging / name / "pytorch_lora_weights.safetensors")
            else:
                _link(source, staging / name)
        if recommendations:
            (staging / "lcm_desktop.json").write_text(json.dumps(recommendations) + "\n", encoding="utf-8")

    try:
        publish_dir(target, build, replace=True)  # an incomplete view is replaced; a complete one was kept above
    except OSError:
        if not target.is_dir():  # another process published the same view meanwhile: use it
            raise
    return target


def _link(source: Path, link: Path) -> None:
    real = source.resolve()
    try:
        os.symlink(real, link)
    except OSError:  # no symlinks (Windows without developer mode): hard link, else copy
        try:
            os.link(real, link)
        except OSError:
            shutil.copy2(real, link)
