"""What to convert and how: a frozen ``ConvertOptions`` (argparse stays in ``__main__``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from lcm_desktop.core.errors import ConversionError
from lcm_desktop.core.manifest import (
    ATTENTIONS,
    MAX_PROMPT_CHUNKS,
    PALETTIZE_BITS,
    TEXT_ENCODER,
    UNET,
    VAE_DECODER,
    VAE_ENCODER,
)
from lcm_desktop.core.request import MAX_LORA_WEIGHT

TARGETS = ("macOS13", "macOS14", "macOS15")
# User-facing component names (--components) → what they produce.
COMPONENT_CHOICES = {
    "text_encoder": TEXT_ENCODER,  # SDXL: both text encoders
    "unet": UNET,
    "vae_decoder": VAE_DECODER,
    "vae_encoder": VAE_ENCODER,
}


@dataclass(frozen=True)
class ConvertOptions:
    source: Path
    out: Path
    lcm_lora: Path | None = None
    attention: str = "split_einsum"
    size: tuple[int, int] | None = None  # (width, height); None: the model's native size
    palettize: int | None = None
    components: tuple[str, ...] = tuple(COMPONENT_CHOICES)
    min_target: str = "macOS14"
    batch_size: int = 1
    force: bool = False
    tiny_decoder: Path | None = None  # an AutoencoderTiny (TAESD) folder, converted as TinyDecoder
    verify: bool = True  # execute each saved package (reference executor) and check its PSNR against PyTorch
    # The Unet's encoder_hidden_states hold this many 75-token prompt chunks (77 tokens each): 1 is Apple's
    # (B, D, 1, 77) and makes the same images as PyTorch for every prompt that fits; a shorter prompt on a
    # larger Unet is padded with empty-prompt chunks (see lcm_desktop/engine/prompt_encoding.py).
    max_prompt_chunks: int = 1
    loras: tuple[tuple[Path, float], ...] = ()  # style LoRAs (file, weight) baked into the UNet and text encoders
    # The sampler preset the converted model runs (core.presets); None: the source folder's.  Name it when a
    # distillation LoRA (TCD, Hyper-SD) is fused with --lcm-lora or baked with --lora.
    sampler: str | None = None

    def __post_init__(self) -> None:
        if self.sampler is not None:
            from lcm_desktop.core.presets import preset_named

            object.__setattr__(self, "sampler", preset_named(self.sampler).name)  # an unknown name: one line
        object.__setattr__(self, "source", Path(self.source))
        object.__setattr__(self, "out", Path(self.out))
        for name in ("lcm_lora", "tiny_decoder"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        loras = tuple((Path(path), float(weight)) for path, weight in self.loras)
        object.__setattr__(self, "loras", loras)
        for path, weight in loras:
            if not math.isfinite(weight) or abs(weight) > MAX_LORA_WEIGHT:
                raise ConversionError(f"--lora {path.name}:{weight:g}: the weight must be from {-MAX_LORA_WEIGHT:g} to "
                                      f"{MAX_LORA_WEIGHT:g}.")
        if self.attention not in ATTENTIONS:
            raise ConversionError(f"--attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}.")
        if self.palettize is not None and self.palettize not in PALETTIZE_BITS:
            raise ConversionError(
                f"--palettize must be one of {', '.join(map(str, PALETTIZE_BITS))}, got {self.palettize!r}."
            )
        if self.min_target not in TARGETS:
            raise ConversionError(f"--min-target must be one of {', '.join(TARGETS)}, got {self.min_target!r}.")
        if self.batch_size not in (1, 2):
            raise ConversionError(f"--batch-size must be 1 (LCM) or 2 (classic CFG), got {self.batch_size!r}.")
        unknown = [c for c in self.components if c not in COMPONENT_CHOICES]
        if unknown or not self.components:
            raise ConversionError(
                f"--components must name some of {', '.join(COMPONENT_CHOICES)}, "
                f"got {','.join(self.components) or 'nothing'}."
            )
        chunks = self.max_prompt_chunks
        if isinstance(chunks, bool) or not isinstance(chunks, int) or not 1 <= chunks <= MAX_PROMPT_CHUNKS:
            raise ConversionError(
                f"--max-prompt-chunks must be a whole number from 1 to {MAX_PROMPT_CHUNKS} (75 prompt tokens each), "
                f"got {chunks!r}."
            )
        if self.size is not None:
            width, height = self.size
            if width <= 0 or height <= 0 or width % 8 or height % 8:
                raise ConversionError(f"--size must be WxH with both multiples of 8, got {width}x{height}.")


def parse_size(text: str) -> tuple[int, int]:
    """``"512x768"`` → (512, 768) (width, height)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not match:
        raise ConversionError(f"--size must look like 512x512 (width x height), got {text!r}.")
    return int(match.group(1)), int(match.group(2))


def parse_components(text: str) -> tuple[str, ...]:
    """``"unet,vae_decoder"`` or ``"all"`` → component names."""
    if text.strip() == "all":
        return tuple(COMPONENT_CHOICES)
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_lora(text: str) -> tuple[Path, float]:
    """``--lora FILE[:WEIGHT]`` → (file, weight); weight 1 when left out (a path may itself hold ``:``)."""
    path, colon, weight = text.rpartition(":")
    if colon:
        try:
            return Path(path), float(weight)
        except ValueError:
            pass
    return Path(text), 1.0
