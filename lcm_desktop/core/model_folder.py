"""Checks a diffusers-format model folder before any weights are loaded (no torch needed).

A user pointing the app at the wrong thing gets one sentence saying what is wrong and what to do:
a missing folder, a folder that is not a diffusers model, a missing component, weights that are
only pickles (refused: loading them can run arbitrary code), or a truncated/corrupt .safetensors.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelCorruptError, ModelFormatError, ModelNotFoundError, UnsafeModelError

PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
WEIGHT_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")
PICKLE_HINT = (
    "pickle weights can run arbitrary code when loaded, so LCM Desktop only loads .safetensors; "
    "download the model's safetensors files or convert them with a trusted tool"
)


@dataclass(frozen=True)
class ModelFolder:
    path: Path
    family: str  # "sd" | "sdxl"
    pipeline_class: str
    components: dict[str, tuple[str | None, str | None]]  # name -> (library, class)
    weight_files: dict[str, list[Path]]  # component -> its safetensors files

    @property
    def name(self) -> str:
        return self.path.name


def inspect_model_folder(path: Path | str) -> ModelFolder:
    """Validate ``path`` as a diffusers text-to-image folder; raise an ``LcmError`` if it is not one."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelNotFoundError(f"Model not found: {path} does not exist; pass a diffusers model folder.")
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafeModelError(f"Refusing to load {path.name}: {PICKLE_HINT}.")
        raise ModelFormatError(
            f"{path.name} is a single file; import it first with `lcm-desktop models import {path}` "
            "or pass a diffusers model folder."
        )
    index_file = path / "model_index.json"
    if not index_file.is_file():
        raise ModelFormatError(
            f"{path} is not a diffusers model folder (model_index.json is missing); "
            "pass the folder that contains model_index.json, unet/ and vae/."
        )
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCorruptError(f"{index_file} cannot be read ({exc}); re-download or re-import the model.") from exc
    components = {
        k: tuple(v) for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and len(v) == 2
    }
    present = {k for k, (lib, cls) in components.items() if lib and cls}
    family = "sdxl" if "text_encoder_2" in present or "tokenizer_2" in present else "sd"
    required = ["unet", "vae", "text_encoder", "tokenizer", "scheduler"]
    if family == "sdxl":
        required = [c for c in required if c != "text_encoder"] + ["text_encoder_2", "tokenizer_2"]
    missing = [c for c in required if c not in present or not (path / c).is_dir()]
    if missing:
        raise ModelFormatError(
            f"{path.name} is missing {', '.join(missing)}; re-download the model or pick a complete diffusers folder."
        )
    weights: dict[str, list[Path]] = {}
    for comp in WEIGHT_COMPONENTS:
        if comp not in present:
            continue
        folder = path / comp
        safes = sorted(folder.glob("*.safetensors"))
        if not safes:
            pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
            if pickles:
                raise UnsafeModelError(f"Refusing to load {comp}/{pickles[0]} of {path.name}: {PICKLE_HINT}.")
            raise ModelFormatError(f"{path.name}/{comp} has no .safetensors weights; re-download the model.")
        for file in safes:
            check_safetensors(file)
        weights[comp] = safes
    return ModelFolder(path, family, str(index.get("_class_name", "")), components, weights)


def check_safetensors(path: Path) -> None:
    """Cheap integrity check of a .safetensors file: header parses and the data is all there.

    safetensors itself detects this only when the tensors are loaded, with a message no user can act on.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            raw = handle.read(8)
            if len(raw) < 8:
                raise ValueError("file shorter than its header")
            (header_len,) = struct.unpack("<Q", raw)
            if header_len > min(size - 8, 100_000_000):
                raise ValueError("header length beyond the end of the file")
            header = json.loads(handle.read(header_len))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        if 8 + header_len + end > size:
            raise ValueError(f"truncated: {size} bytes, {8 + header_len + end} expected")
    except (OSError, ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise ModelCorruptError(
            f"{path.parent.name}/{path.name} is corrupt or incomplete ({exc}); delete and re-download the model."
        ) from exc


def model_hash(model: ModelFolder) -> str:
    """A short, stable fingerprint of a model's weights (10 hex digits, like A1111's "Model hash").

    Hashing gigabytes on every load is too slow, so this hashes each safetensors header (names,
    shapes, dtypes, offsets) and file size — it changes whenever the weights file is replaced.
    """
    import hashlib

    digest = hashlib.sha256()
    for comp in sorted(model.weight_files):
        for file in model.weight_files[comp]:
            with open(file, "rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                digest.update(comp.encode() + handle.read(length) + str(file.stat().st_size).encode())
    return digest.hexdigest()[:10]
