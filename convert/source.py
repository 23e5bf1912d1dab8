"""The model being converted: a local diffusers folder, checked, identified and loaded.

Refuses what it cannot convert before any heavy work: a folder that is not a diffusers model,
a missing component, pickle-only weights, an architecture other than Stable Diffusion's
``UNet2DConditionModel`` + ``AutoencoderKL`` + CLIP text encoder(s).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lcm_desktop.core.clip_vocab import merges_text, parse_merges
from lcm_desktop.core.errors import ConversionError, ModelFormatError, UnsafeModelError
from lcm_desktop.core.manifest import SourceInfo
from lcm_desktop.core.model_files import (
    check_regular,
    copy_data_file,
    data_files,
    link_root,
    open_regular,
    read_json,
    read_text,
)
from lcm_desktop.core.model_folder import PICKLE_SUFFIXES, check_data_files, component_classes
from lcm_desktop.core.model_info import describe_model, vae_scale_factor

SUPPORTED = {
    "unet": ("UNet2DConditionModel",),
    "vae": ("AutoencoderKL",),
    "text_encoder": ("CLIPTextModel", "CLIPTextModelWithProjection"),
    "text_encoder_2": ("CLIPTextModelWithProjection", "CLIPTextModel"),
}


@dataclass(frozen=True)
class SourceModel:
    path: Path
    family: str  # "sd" | "sdxl"
    unet_config: dict[str, Any]
    vae_config: dict[str, Any]
    model_index: dict[str, Any]

    @property
    def vae_scale_factor(self) -> int:
        return vae_scale_factor(self.vae_config)

    @property
    def native_size(self) -> tuple[int, int]:
        side = int(self.unet_config.get("sample_size", 64)) * self.vae_scale_factor
        return side, side

    @property
    def text_encoders(self) -> tuple[str, ...]:
        return ("text_encoder", "text_encoder_2") if self.family == "sdxl" else ("text_encoder",)


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from the (untrusted) source folder: a regular file, bounded, one error naming it."""
    return read_json(path)


def _check_weights(folder: Path) -> None:
    if any(folder.glob("*.safetensors")):
        return
    pickles = [p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        raise UnsafeModelError(
            f"{folder} holds only pickle weights ({', '.join(sorted(pickles))}), which can run code when loaded; "
            "use a .safetensors copy of this model."
        )
    raise ModelFormatError(f"{folder} has no .safetensors weights; the model folder is incomplete.")


def inspect_source(path: Path, components: tuple[str, ...]) -> SourceModel:
    """Check that ``path`` is a convertible diffusers model and that the folders ``components`` need exist."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFormatError(f"{path} is not a folder; SOURCE must be a local diffusers model folder.")
    if not (path / "model_index.json").is_file():
        raise ModelFormatError(f"{path} has no model_index.json; SOURCE must be a diffusers model folder.")
    index = _read_json(path / "model_index.json")
    component_classes(index, path / "model_index.json")  # only known classes: diffusers imports what it names
    if not (path / "unet" / "config.json").is_file():
        raise ModelFormatError(f"{path} has no unet/config.json; the model folder is missing its UNet.")
    unet_config = _read_json(path / "unet" / "config.json")
    family = describe_model(path).family  # the one rule for SD- vs SDXL-class, shared with the app
    needed = {"unet"}
    if "text_encoder" in components:
        needed |= set(("text_encoder", "text_encoder_2") if family == "sdxl" else ("text_encoder",))
        needed |= {"tokenizer"}
    needed |= {"vae"}  # its config fixes the latent scale even when only the UNet converts
    for name in sorted(needed):
        folder = path / name
        if not folder.is_dir():
            raise ModelFormatError(f"{path} has no {name}/ folder; the model is missing a component.")
        check_data_files(folder)  # every config, tokenizer file and weight is a regular file that parses
        if name != "tokenizer":
            config = _read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
            architectures = config.get("architectures")
            cls = config.get("_class_name") or (architectures[0] if isinstance(architectures, list) and architectures
                                                else None)
            if name in SUPPORTED and cls not in SUPPORTED[name]:
                raise ConversionError(
                    f"unsupported architecture: {name} is {cls or 'unknown'}; the converter handles Stable Diffusion "
                    f"1.x/2.x/SDXL-class models ({name}: {' or '.join(SUPPORTED[name])})."
                )
            if name != "vae" or "vae_decoder" in components or "vae_encoder" in components:
                _check_weights(folder)
    if unet_config.get("addition_embed_type") not in (None, "text_time"):
        raise ConversionError(
            f"unsupported architecture: UNet addition_embed_type {unet_config['addition_embed_type']!r}; "
            "the converter handles SD1.x/2.x and SDXL-class UNets."
        )
    return SourceModel(path, family, unet_config, _read_json(path / "vae" / "config.json"), index)


def load_pipeline(source: SourceModel, components: tuple[str, ...]):
    """The diffusers pipeline in fp32 with only the modules ``components`` need; every other module is None.

    (The tokenizers and scheduler are copied as files, never loaded.)
    """
    import diffusers
    import torch
    from diffusers import DiffusionPipeline

    needed = {"unet"}
    if "text_encoder" in components:
        needed |= set(source.text_encoders)
    if "vae_decoder" in components or "vae_encoder" in components:
        needed.add("vae")
    cls = getattr(diffusers, str(source.model_index.get("_class_name")), None)
    if not (isinstance(cls, type) and issubclass(cls, DiffusionPipeline)):
        raise ConversionError(
            f"unsupported architecture: pipeline {source.model_index.get('_class_name')!r}; the converter handles "
            "Stable Diffusion 1.x/2.x/SDXL-class pipelines."
        )
    expected, _ = cls._get_signature_keys(cls)
    skip = {name: None for name in expected if name not in needed}
    # A folder shipping only fp16 weights (e.g. latent-consistency/lcm-sdxl) names them *.fp16.safetensors.
    files = [p.name for name in needed for p in (source.path / name).glob("*.safetensors")]
    variant = "fp16" if files and all(".fp16." in name for name in files) else None
    try:
        pipe = cls.from_pretrained(source.path, use_safetensors=True, dtype=torch.float32, local_files_only=True,
                                   variant=variant, **skip)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise ModelFormatError(
            f"{source.path} could not be loaded by diffusers ({type(exc).__name__}: {exc})."
        ) from exc
    for name in sorted(needed):
        module = getattr(pipe, name, None)
        if module is None:
            raise ModelFormatError(f"{source.path} has no {name}; the model is missing a component.")
        module.eval().requires_grad_(False)
    return pipe


def load_tiny_decoder(path: Path):
    """An AutoencoderTiny (TAESD) folder, checked like the main model: config, safetensors, class."""
    import torch
    from diffusers import AutoencoderTiny

    path = Path(path)
    config = path / "config.json"
    if not config.is_file():
        raise ModelFormatError(
            f"{path} has no config.json; --tiny-decoder must be an AutoencoderTiny folder (e.g. taesd)."
        )
    cls = _read_json(config).get("_class_name")
    if cls != "AutoencoderTiny":
        raise ConversionError(
            f"unsupported architecture: --tiny-decoder {path.name} is {cls or 'unknown'}, not AutoencoderTiny."
        )
    _check_weights(path)
    try:
        taesd = AutoencoderTiny.from_pretrained(path, use_safetensors=True, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise ModelFormatError(f"{path} could not be loaded by diffusers ({type(exc).__name__}: {exc}).") from exc
    return taesd.eval().requires_grad_(False)


def _hash_file(path: Path, digest: Any) -> None:
    with open_regular(path) as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)


def content_hash(path: Path) -> str:
    """sha256 over every file of a model folder (relative names and contents, in sorted order)."""
    digest = hashlib.sha256()
    files = (
        [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    )
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        _hash_file(file, digest)
    return digest.hexdigest()


def source_info(path: Path, lcm_lora: Path | None, tiny_decoder: Path | None = None) -> SourceInfo:
    """Where the model came from: a Hugging Face cache snapshot path gives the repo id and revision."""
    resolved = Path(path).resolve()
    repo_id = revision = None
    match = re.search(r"models--([^/]+)--([^/]+)/snapshots/([0-9a-f]{40})", resolved.as_posix())
    if match:
        repo_id, revision = f"{match.group(1)}/{match.group(2)}", match.group(3)
    return SourceInfo(
        path=str(resolved), repo_id=repo_id, revision=revision, content_hash=content_hash(resolved),
        lcm_lora=str(lcm_lora.resolve()) if lcm_lora else None,
        lcm_lora_hash=content_hash(lcm_lora.resolve()) if lcm_lora else None,
        tiny_decoder=str(tiny_decoder.resolve()) if tiny_decoder else None,
        tiny_decoder_hash=content_hash(tiny_decoder.resolve()) if tiny_decoder else None,
    )


def weights_bytes(source: SourceModel, folders: tuple[str, ...]) -> int:
    """fp32-equivalent bytes of the safetensors weights in ``folders`` (for the disk-space estimate)."""
    return sum(p.stat().st_size * (2 if ".fp16." in p.name else 1)
               for name in folders for p in (source.path / name).glob("*.safetensors"))


def copy_tokenizers_and_scheduler(source: SourceModel, out: Path) -> tuple[str, ...]:
    """tokenizer folders, Apple's ``vocab.json`` + ``merges.txt`` and ``scheduler/scheduler_config.json``."""
    tokenizers = tuple(n for n in ("tokenizer", "tokenizer_2") if (source.path / n).is_dir())
    root = link_root(source.path)
    for name in tokenizers:  # data files only, never code, links out of the folder or special files
        for relative, real, size in data_files(source.path / name, root=root):
            copy_data_file(real, out / name / relative, size)
    if tokenizers:
        vocab, merges = _vocab_and_merges(source.path / "tokenizer")
        (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (out / "merges.txt").write_text(merges_text(merges), encoding="utf-8")
    scheduler = source.path / "scheduler" / "scheduler_config.json"
    if not scheduler.is_file():
        raise ModelFormatError(f"{source.path} has no scheduler/scheduler_config.json; the model folder is incomplete.")
    _read_json(scheduler)
    copy_data_file(scheduler, out / "scheduler" / "scheduler_config.json", check_regular(scheduler).st_size)
    return tokenizers


def _vocab_and_merges(folder: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        vocab = _read_json(folder / "vocab.json")
        return vocab, parse_merges(read_text(folder / "merges.txt"))
    if (folder / "tokenizer.json").is_file():
        model = _read_json(folder / "tokenizer.json").get("model", {})
        if isinstance(model, dict) and model.get("type") == "BPE":
            try:
                merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
                return dict(model["vocab"]), merges  # type: ignore[return-value]
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ModelFormatError(
                    f"{folder.name}/tokenizer.json has no usable BPE vocabulary and merges ({type(exc).__name__}); "
                    "replace that file with a good copy."
                ) from exc
    raise ModelFormatError(f"{folder} has no CLIP BPE tokenizer (vocab.json + merges.txt or tokenizer.json).")
