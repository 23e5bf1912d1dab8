"""What a style LoRA file is, from its safetensors header alone (plain Python: no torch, no tensors read).

    info = inspect_lora(Path("papercut.safetensors"))   # LoraInfo: format, family, parts, rank, trigger words
    check_lora_fits(info, family="sd", cross_attention_dim=768, model="lcm-dreamshaper-v7")
    lora_hash(path)                                      # "a1b2c3d4e5f6": AUTOMATIC1111's `Lora hashes` value

Two key formats are loaded (diffusers converts the second itself):
- diffusers/PEFT: ``unet.….to_q.lora_A.weight`` / ``lora_B`` (or the older ``.lora.down``/``.lora.up`` and
  ``.lora_linear_layer.down``), ``text_encoder.…``, ``text_encoder_2.…``;
- kohya/AUTOMATIC1111: ``lora_unet_…``, ``lora_te_…`` (SD1.5) or ``lora_te1_…``/``lora_te2_…`` (SDXL), each with
  ``.lora_down.weight``, ``.lora_up.weight`` and ``.alpha`` (``.dora_scale`` for DoRA).
Refused with one line naming the file: anything but ``.safetensors`` (pickles can run code), LyCORIS LoHa
(``hada_``), LoKr (``lokr_``), LoCon with Tucker ``lora_mid`` and other LyCORIS kinds (diffusers cannot load
them: diffusers #3087, #11943), and files whose keys are no LoRA at all.

The family (SD1.5-class ``sd`` or SDXL-class ``sdxl``) comes from the keys: a second text encoder
(``lora_te2_``, ``text_encoder_2.``) or kohya's ``lora_te1_`` means SDXL; the cross-attention width of an
``attn2.to_k`` LoRA (768/1024: SD1.x/2.x, 2048: SDXL) decides next; then the UNet's shape (SD1.5 has
attention in its first down block, SDXL never; SDXL stacks several transformer blocks); then the kohya
metadata (``ss_base_model_version``, ``modelspec.architecture``).  ``None``: the file does not say.

The hash is the one AUTOMATIC1111 writes in ``Lora hashes`` (its "addnet" hash, taken from kohya's
sd-scripts): sha256 of the file's bytes after the header (the tensor data, so editing the metadata keeps
it), first 12 hex digits.  A1111 prefers a ``sshs_model_hash`` metadata value when the file has one;
kohya computes that value the same way, so we always compute it and never trust a stranger's field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .errors import LcmError, ModelFormatError, UnsafeModelError
from .model_files import open_regular, parse_json, read_safetensors_header
from .model_folder import PICKLE_SUFFIXES

SUFFIX = ".safetensors"
HASH_DIGITS = 12
MAX_TRIGGER_WORDS = 8
MAX_METADATA_CHARS = 2_000_000  # ss_tag_frequency of a big dataset is a few hundred KB
FAMILY_LABELS = {"sd": "SD1.5-class", "sdxl": "SDXL-class"}

# LyCORIS kinds diffusers cannot load: the key fragment → what it is.
_UNLOADABLE = (("hada_", "LoHa (LyCORIS)"), ("lokr_", "LoKr (LyCORIS)"), ("lora_mid", "LoCon with Tucker (lora_mid)"),
               ("oft_", "OFT (LyCORIS)"), ("on_input", "IA3 (LyCORIS)"))
_FULL_DIFF = (".diff", ".diff_b")  # LyCORIS "full": whole weight differences
_KOHYA_PREFIXES = {"lora_unet_": "unet", "lora_te_": "text_encoder", "lora_te1_": "text_encoder",
                   "lora_te2_": "text_encoder_2"}
_KOHYA_SUFFIXES = (".lora_down.weight", ".lora_up.weight", ".alpha", ".dora_scale")
_DIFFUSERS_PARTS = {"unet": "unet", "text_encoder": "text_encoder", "text_encoder_2": "text_encoder_2"}
_DIFFUSERS_DOWN = (".lora_A.weight", ".lora.down.weight", ".lora_linear_layer.down.weight")
_DIFFUSERS_OTHER = (".lora_B.weight", ".lora.up.weight", ".lora_linear_layer.up.weight", ".alpha",
                    ".lora_magnitude_vector", ".lora_magnitude_vector.weight")


class LoraFormat(StrEnum):
    DIFFUSERS = "diffusers"  # diffusers / PEFT key names
    KOHYA = "kohya"  # kohya-ss / AUTOMATIC1111 key names


class StyleMismatchError(LcmError):
    """A style LoRA made for another model family (or another cross-attention width)."""


@dataclass(frozen=True)
class LoraInfo:
    """One style LoRA file, as its header describes it."""

    path: Path
    format: LoraFormat
    family: str | None  # "sd" | "sdxl" | None (the file does not say)
    parts: tuple[str, ...]  # of "unet", "text_encoder", "text_encoder_2"
    modules: int  # LoRA layers in the file (pairs of down/up matrices)
    rank: int  # the largest rank of its layers
    size_bytes: int
    cross_attention_dim: int | None = None  # from an attn2.to_k LoRA: 768 SD1.x, 1024 SD2.x, 2048 SDXL
    dora: bool = False
    trigger_words: tuple[str, ...] = ()  # kohya's most frequent training tags (ss_tag_frequency)
    base_model: str | None = None  # kohya's ss_sd_model_name, when the file says

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def family_label(self) -> str:
        return FAMILY_LABELS.get(self.family or "", "unknown family")

    @property
    def touches_text_encoder(self) -> bool:
        return any(part.startswith("text_encoder") for part in self.parts)


def inspect_lora(path: Path | str) -> LoraInfo:
    """Describe a LoRA ``.safetensors`` file from its header, or refuse it in one line naming the file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise UnsafeModelError(
            f"Refusing to load the LoRA {path.name}: {suffix} files are Python pickles, which can run code; "
            "use the .safetensors version of this LoRA."
        )
    if suffix != SUFFIX:
        raise ModelFormatError(f"{path.name} is not a .safetensors LoRA file; use the .safetensors version of it.")
    header = read_safetensors_header(path)
    full = parse_json(header.raw, path)
    metadata = full.get("__metadata__")
    metadata = metadata if isinstance(metadata, dict) else {}
    keys = list(header.tensors)
    _refuse_unloadable(path, keys)
    fmt, parts, downs = _classify(path, keys)
    shapes = {k: v.get("shape") for k, v in header.tensors.items()}
    ranks = [s[0] for k in downs if isinstance(s := shapes.get(k), list) and s and type(s[0]) is int]
    cross = _cross_attention_dim(downs, shapes)
    return LoraInfo(
        path=path, format=fmt, family=_family(keys, parts, cross, metadata), parts=parts, modules=len(downs),
        rank=max(ranks, default=0), size_bytes=header.size, cross_attention_dim=cross,
        dora=any("dora_scale" in k or "lora_magnitude_vector" in k for k in keys),
        trigger_words=trigger_words(metadata), base_model=_text(metadata.get("ss_sd_model_name")),
    )


def _refuse_unloadable(path: Path, keys: list[str]) -> None:
    found = [kind for fragment, kind in _UNLOADABLE if any(fragment in key for key in keys)]
    if any(key.endswith(_FULL_DIFF) for key in keys):
        found.append("a full weight difference (LyCORIS)")
    for kind in found[:1]:
        raise ModelFormatError(
            f"{path.name} is a {kind} file, which diffusers cannot load; use a plain LoRA (LoRA/LoCon without "
            "lora_mid) version of this style."
        )


def _classify(path: Path, keys: list[str]) -> tuple[LoraFormat, tuple[str, ...], list[str]]:
    """The key format, the parts touched (model order) and the keys of the down (A) matrices."""
    kohya = [k for k in keys if k.startswith(tuple(_KOHYA_PREFIXES))]
    if kohya and len(kohya) == len(keys) and all(k.endswith(_KOHYA_SUFFIXES) for k in keys):
        parts = {_KOHYA_PREFIXES[p] for k in keys for p in _KOHYA_PREFIXES if k.startswith(p)}
        downs = [k for k in keys if k.endswith(".lora_down.weight")]
        fmt = LoraFormat.KOHYA
    else:
        known = all(k.endswith(_DIFFUSERS_DOWN + _DIFFUSERS_OTHER) for k in keys)
        parts = {_DIFFUSERS_PARTS.get(k.split(".", 1)[0], "unet") for k in keys}  # no prefix: an old UNet-only file
        downs = [k for k in keys if k.endswith(_DIFFUSERS_DOWN)]
        fmt = LoraFormat.DIFFUSERS
        if not known or kohya:
            downs = []
    if not downs:
        sample = next(iter(sorted(keys)), "(no tensors)")
        raise ModelFormatError(
            f"{path.name} is not a LoRA diffusers can load (keys such as {sample[:80]!r} match neither the "
            "diffusers/PEFT nor the kohya/AUTOMATIC1111 LoRA format); use a LoRA .safetensors file."
        )
    order = ("unet", "text_encoder", "text_encoder_2")
    return fmt, tuple(p for p in order if p in parts), downs


def _cross_attention_dim(downs: list[str], shapes: Mapping[str, object]) -> int | None:
    """The input width of a cross-attention key/value LoRA (``attn2.to_k``): the text embedding's width."""
    for key in downs:
        normal = key.replace("_", ".")
        if "attn2.to.k." in normal or "attn2.to.v." in normal:
            shape = shapes.get(key)
            if isinstance(shape, list) and len(shape) >= 2 and type(shape[1]) is int:
                return shape[1]
    return None


_TRANSFORMER_INDEX = re.compile(r"transformer[._]blocks[._](\d+)")
_FIRST_ATTENTION = re.compile(r"(down[._]blocks[._]0[._]attentions|input[._]blocks[._][12][._]1[._])")


def _family(keys: list[str], parts: tuple[str, ...], cross: int | None, metadata: dict) -> str | None:
    if "text_encoder_2" in parts or any(k.startswith("lora_te1_") for k in keys):
        return "sdxl"
    if cross in (768, 1024):
        return "sd"
    if cross in (1280, 2048):
        return "sdxl"
    unet = [k for k in keys if k.startswith(("lora_unet_", "unet.")) or not k.startswith(("lora_te", "text_encoder"))]
    if any(int(m.group(1)) >= 1 for k in unet if (m := _TRANSFORMER_INDEX.search(k))):
        return "sdxl"  # SDXL stacks 2 or 10 transformer blocks per attention; SD1.x/2.x has one
    if any(_FIRST_ATTENTION.search(k) for k in unet):
        return "sd"  # SD1.x/2.x attends in its first down block; SDXL's first block has no attention
    version = " ".join(_text(metadata.get(key)) or "" for key in ("ss_base_model_version", "modelspec.architecture"))
    if "xl" in version.lower():
        return "sdxl"
    if re.search(r"sd_v1|sd_v2|stable-diffusion-v1|stable-diffusion-v2", version):
        return "sd"
    return None


def trigger_words(metadata: Mapping[str, object], limit: int = MAX_TRIGGER_WORDS) -> tuple[str, ...]:
    """kohya's ``ss_tag_frequency`` (``{"dataset folder": {"tag": count}}``, a JSON string): the most frequent
    tags over all folders, most frequent first; ``()`` when absent or malformed."""
    raw = metadata.get("ss_tag_frequency")
    if not isinstance(raw, str) or len(raw) > MAX_METADATA_CHARS:
        return ()
    try:
        folders = json.loads(raw)
    except (ValueError, RecursionError):
        return ()
    counts: dict[str, float] = {}
    for tags in folders.values() if isinstance(folders, dict) else ():
        for tag, count in tags.items() if isinstance(tags, dict) else ():
            if isinstance(tag, str) and tag.strip() and isinstance(count, (int, float)) and math.isfinite(count):
                counts[tag.strip()] = counts.get(tag.strip(), 0) + count
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(tag[:80] for tag, _ in ranked[:limit])


def _text(value: object) -> str | None:
    return value.strip()[:200] or None if isinstance(value, str) else None


def lora_hash(path: Path | str) -> str:
    """AUTOMATIC1111's short LoRA hash (its "addnet" hash): sha256 of the bytes after the safetensors header,
    first 12 hex digits.  Reads the whole file."""
    path = Path(path)
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        length = int.from_bytes(handle.read(8), "little")
        handle.seek(8 + length)
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:HASH_DIGITS]


def check_lora_fits(info: LoraInfo, *, family: str, model: str, cross_attention_dim: int | None = None) -> None:
    """Refuse a LoRA made for another model family (one line naming both), before diffusers sees it."""
    if info.family is not None and info.family != family:
        raise StyleMismatchError(
            f"The style {info.name} is made for {info.family_label} models but {model} is "
            f"{FAMILY_LABELS.get(family, family)}; choose a {info.family_label} model or a style made for {model}."
        )
    if info.cross_attention_dim is not None and cross_attention_dim is not None \
            and info.cross_attention_dim != cross_attention_dim:
        raise StyleMismatchError(
            f"The style {info.name} is made for text embeddings {info.cross_attention_dim} wide but {model} takes "
            f"{cross_attention_dim}; choose a style made for this model's base (e.g. SD1.5 vs SD2 vs SDXL)."
        )


@dataclass(frozen=True)
class StyleFile:
    """A style resolved to its file, at a weight: what the engine applies (the front end resolves names)."""

    name: str
    path: Path
    weight: float
