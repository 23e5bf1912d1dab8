"""Fuse an LCM-LoRA into a base pipeline before conversion (diffusers ``load_lora_weights`` + ``fuse_lora``).

A Core ML model has fixed weights, so the LoRA is merged in: W ← W + scale·B·A.  Only
``.safetensors`` files are read (pickles can run code).  A LoRA made for another base either
fails in diffusers (shape mismatch) or silently touches nothing (no matching keys); both become
one clear ConversionError.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from lcm_desktop.core.errors import ConversionError, ModelFormatError, UnsafeModelError

log = logging.getLogger(__name__)

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"


def resolve_lora_file(path: Path) -> Path:
    """The LoRA's ``.safetensors`` file: ``path`` itself, or the standard file name inside a folder."""
    path = Path(path)
    if path.is_dir():
        candidates = (
            [path / LORA_WEIGHT_NAME] if (path / LORA_WEIGHT_NAME).is_file() else sorted(path.glob("*.safetensors"))
        )
        if len(candidates) != 1:
            raise ModelFormatError(
                f"{path} should hold exactly one .safetensors LoRA file (found {len(candidates)}); "
                "pass the file itself."
            )
        path = candidates[0]
    if not path.is_file():
        raise ModelFormatError(f"LCM-LoRA {path} does not exist.")
    if path.suffix != ".safetensors":
        raise UnsafeModelError(f"LCM-LoRA {path.name} is not a .safetensors file; only safetensors LoRAs are loaded.")
    return path


def fuse_lcm_lora(pipe, lora_path: Path, scale: float = 1.0) -> int:
    """Load the LoRA into ``pipe`` and fuse it into the UNet's weights; returns how many UNet tensors changed."""
    lora_file = resolve_lora_file(lora_path)
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    try:
        pipe.load_lora_weights(str(lora_file), adapter_name="lcm")
        pipe.fuse_lora(lora_scale=scale, adapter_names=["lcm"])
        pipe.unload_lora_weights()
    except ImportError as exc:
        raise ConversionError("fusing a LoRA needs the peft package; install it with pip install peft.") from exc
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise ConversionError(
            f"LCM-LoRA {lora_file.name} does not match this base model ({type(exc).__name__}: {_first_line(exc)}); "
            "use the LCM-LoRA made for this model family (SD1.5, SDXL or SSD-1B)."
        ) from exc
    after = pipe.unet.state_dict()
    if set(after) != set(before):
        raise ConversionError(
            f"fusing {lora_file.name} left LoRA layers in the UNet; the LoRA format is not supported."
        )
    changed = sum(1 for k, v in after.items() if not torch.equal(v, before[k]))
    if changed == 0:
        raise ConversionError(
            f"LCM-LoRA {lora_file.name} changed no UNet weight: it does not match this base model; "
            "use the LCM-LoRA made for this model family (SD1.5, SDXL or SSD-1B)."
        )
    log.info("fused %s into %d UNet tensors", lora_file.name, changed)
    return changed


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    telling = [line for line in lines if "mismatch" in line or "not found" in line]
    return (telling or lines or [type(exc).__name__])[0][:200]
