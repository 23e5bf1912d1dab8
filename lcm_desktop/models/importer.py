"""Importing models from disk: diffusers folders and single-file .safetensors checkpoints, never pickles.

    import_model(Path("~/Downloads/my-lcm"))                  # a diffusers folder, copied
    import_model(Path("dreamshaper_8.safetensors"), name="ds8")  # SD1.5/SDXL checkpoint, converted

An import lands in ``<app data>/models/<name>/`` atomically: it is assembled in a hidden
staging folder beside it, validated with ``inspect_model_folder``, then renamed into place, so a
half-imported model is never listed.  Pickle weights (``.ckpt``/``.pt``/``.bin``/``.pth``) are
refused, because loading them can run arbitrary code.

A model folder is untrusted: only its data files are copied, never code, and never through a link
out of the folder or from a FIFO or device (the rule is ``core.model_files.data_files``).

Single files are converted with diffusers' single-file loader and the architecture configs
shipped in ``resources/configs/single_file/<family>/`` (the Hub is not needed); checkpoints
carry no tokenizer, so CLIP's ``vocab.json``/``merges.txt`` are derived offline from the BPE
file that the ``open_clip_torch`` package ships.
"""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from ..core.atomic import publish_dir
from ..core.control_folder import inspect_control_folder, is_control_folder
from ..core.errors import InvalidRequestError, ModelFormatError, ModelNotFoundError, UnsafeModelError
from ..core.model_files import check_regular, copy_data_file, data_files, read_safetensors_header
from ..core.model_folder import PICKLE_HINT, PICKLE_SUFFIXES, check_safetensors, inspect_model_folder
from ..core.names import check_model_name
from ..core.paths import AppPaths, resource_path
from .catalog import Catalog, load_catalog
from .disk import DiskUsage, format_size, free_space
from .store import IMPORTED_DIR

SKIPPED_DIRS = {".git", ".cache", ".huggingface", "__pycache__"}


def import_model(source: Path | str, name: str | None = None, *, catalog: Catalog | None = None,
                 paths: AppPaths | None = None, disk_usage: DiskUsage = shutil.disk_usage,
                 config_root: Path | None = None) -> Path:
    """Import a diffusers folder or a single-file checkpoint; return the new model folder."""
    source = Path(source).expanduser()
    if not source.exists():
        raise ModelNotFoundError(f"Cannot import {source}: it does not exist.")
    if not source.is_dir():
        suffix = source.suffix.lower()
        if suffix in PICKLE_SUFFIXES:
            raise UnsafeModelError(f"Refusing to import {source.name}: {PICKLE_HINT}.")
        check_regular(source)
        if suffix != ".safetensors":
            raise ModelFormatError(
                f"{source.name} is not a model file; import a diffusers folder or a .safetensors checkpoint."
            )
        return import_single_file(source, name, catalog=catalog, paths=paths, disk_usage=disk_usage,
                                  config_root=config_root)
    if is_control_folder(source):
        return import_control_folder(source, name, catalog=catalog, paths=paths, disk_usage=disk_usage)
    return import_folder(source, name, catalog=catalog, paths=paths, disk_usage=disk_usage)


def import_control_folder(source: Path, name: str | None = None, *, catalog: Catalog | None = None,
                          paths: AppPaths | None = None, disk_usage: DiskUsage = shutil.disk_usage) -> Path:
    """Copy a ControlNet / T2I-Adapter folder's data files (config.json, safetensors; never code or pickles);
    ``--control-model NAME`` then finds it (``models.resolve.resolve_control``)."""
    return _import_tree(source, name, inspect_control_folder, catalog, paths, disk_usage)


def import_folder(source: Path, name: str | None = None, *, catalog: Catalog | None = None,
                  paths: AppPaths | None = None, disk_usage: DiskUsage = shutil.disk_usage) -> Path:
    """Copy a diffusers folder's data files (weights, configs, tokenizer; never code or pickles)."""
    return _import_tree(source, name, inspect_model_folder, catalog, paths, disk_usage)


def _import_tree(source: Path, name: str | None, inspect, catalog: Catalog | None, paths: AppPaths | None,
                 disk_usage: DiskUsage) -> Path:
    """``inspect`` the source (allow-listed classes, safetensors only, not truncated), copy its data files into a
    staging folder, inspect the copy, publish it."""
    inspect(source)
    files = data_files(source, skip_dirs=SKIPPED_DIRS)
    target = _target(source.name if name is None else name, catalog, paths)
    _check_space(sum(size for _, _, size in files), target.parent, disk_usage)

    def build(staging: Path) -> None:
        for relative, real, size in files:
            _copy(real, staging / relative, size, relative, target)
        inspect(staging)

    return _publish(target, build)


def import_single_file(source: Path, name: str | None = None, *, catalog: Catalog | None = None,
                       paths: AppPaths | None = None, disk_usage: DiskUsage = shutil.disk_usage,
                       config_root: Path | None = None) -> Path:
    """Convert an SD1.5/SDXL ``.safetensors`` checkpoint to a diffusers folder, offline."""
    check_safetensors(source)
    keys = _safetensors_keys(source)
    family = detect_family(keys, source.name)
    target = _target(source.stem if name is None else name, catalog, paths)
    _check_space(2 * source.stat().st_size, target.parent, disk_usage)  # fp32 output can be twice fp16 input
    config_root = Path(config_root) if config_root is not None else resource_path("configs", "single_file")

    def build(staging: Path) -> None:
        config_dir = _config_dir(config_root / family, staging.parent / f".cfg-{staging.name}")
        try:
            _convert(source, family, config_dir, staging)
        finally:
            shutil.rmtree(config_dir, ignore_errors=True)
        inspect_model_folder(staging)

    return _publish(target, build)


def detect_family(keys: set[str], filename: str) -> str:
    """``sd`` or ``sdxl`` from the checkpoint's tensor names (original LDM layout)."""
    if any("cond_proj" in k for k in keys):
        raise ModelFormatError(
            f"{filename} is an LCM with a guidance embedding, which diffusers' single-file converter would drop; "
            "import its diffusers folder instead (for LCM Dreamshaper: `lcm-desktop models pull lcm-dreamshaper-v7`)."
        )
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl"
    if any(k.startswith("cond_stage_model.transformer.") for k in keys) and any(
        k.startswith("model.diffusion_model.") for k in keys
    ):
        return "sd"
    if any(k.startswith(("unet.", "lora_", "lora_unet_")) or ".lora_" in k for k in keys):
        raise ModelFormatError(
            f"{filename} looks like LoRA weights, not a full checkpoint; "
            "LoRAs are applied to a base model, not imported."
        )
    raise ModelFormatError(
        f"{filename} is not an SD 1.5 or SDXL checkpoint (no UNet and text encoder in the original layout); "
        "import a diffusers folder instead."
    )


# -- conversion (diffusers' single-file loader) -----------------------------------------------
def _config_dir(family_configs: Path, out: Path) -> Path:
    """The shipped pipeline configs plus CLIP tokenizer files derived from open_clip's BPE file."""
    from ..core.clip_vocab import clip_vocab_from_bpe, open_clip_bpe_file, write_tokenizer_files

    if not (family_configs / "model_index.json").is_file():
        raise ModelFormatError(f"The import configs {family_configs} are missing; reinstall LCM Desktop.")
    shutil.copytree(family_configs, out)
    index = json.loads((out / "model_index.json").read_text(encoding="utf-8"))
    try:
        vocab, merges = clip_vocab_from_bpe(open_clip_bpe_file())
    except FileNotFoundError as exc:
        raise ModelFormatError(f"Cannot build the CLIP tokenizer offline ({exc}).") from exc
    for tokenizer in ("tokenizer", "tokenizer_2"):
        if tokenizer in index:
            write_tokenizer_files(out / tokenizer, vocab, merges)
    if "tokenizer_2" in index:  # SDXL's OpenCLIP-G tokenizer pads with "!" (id 0), not with the end token
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            path = out / "tokenizer_2" / name
            path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), "pad_token": "!"}, indent=2),
                            encoding="utf-8")
    return out


def _convert(source: Path, family: str, config_dir: Path, out: Path) -> None:
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    pipeline_class = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    try:
        pipe = pipeline_class.from_single_file(
            str(source), config=str(config_dir), local_files_only=True, torch_dtype=torch.float32,
            **({"safety_checker": None, "feature_extractor": None} if family == "sd" else {}),
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelFormatError(
            f"{source.name} could not be converted as an {family.upper()} checkpoint "
            f"({str(exc).splitlines()[0][:160]})."
        ) from exc
    pipe.save_pretrained(out, safe_serialization=True)


# -- helpers ----------------------------------------------------------------------------------
def _safetensors_keys(path: Path) -> set[str]:
    return set(read_safetensors_header(path).tensors)


def _target(name: str, catalog: Catalog | None, paths: AppPaths | None) -> Path:
    catalog = catalog or load_catalog()
    paths = paths or AppPaths.default()
    check_model_name(name, "--name", builtin=[entry.id for entry in catalog])  # catalog ids, ignoring case
    target = paths.data / IMPORTED_DIR / name
    if target.exists():
        raise InvalidRequestError("--name", name, f"a new name ({target} exists; `models rm {name}` or pick another)")
    return target


def _check_space(needed: int, folder: Path, disk_usage: DiskUsage) -> None:
    free, probe = free_space(folder, disk_usage)
    if needed > free:
        raise ModelFormatError(
            f"Not enough disk space to import: it needs {format_size(needed)}, {format_size(free)} is free in {probe}."
        )


def _copy(real: Path, dest: Path, size: int, relative: Path, target: Path) -> None:
    """``copy_data_file``, with a full disk or a failed write said in one sentence."""
    try:
        copy_data_file(real, dest, size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise ModelFormatError(
                f"The disk filled up while importing {relative} into {target.parent}; nothing was imported — "
                "free some disk space and import again."
            ) from exc
        raise ModelFormatError(
            f"Could not copy {relative} while importing ({exc.strerror or exc}); nothing was imported."
        ) from exc


def _publish(target: Path, build: Callable[[Path], None]) -> Path:
    """``publish_dir``: a hidden folder beside ``target``, renamed to it when complete, never replacing one."""
    try:
        return publish_dir(target, build)
    except OSError as err:
        raise ModelFormatError(f"Could not finish the import into {target} ({err.strerror or err}).") from err
