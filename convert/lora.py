"""Fuse an LCM-LoRA and style LoRAs into a pipeline before conversion (diffusers ``load_lora_weights`` +
``set_adapters`` + ``fuse_lora``).

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
from lcm_desktop.core.manifest import BakedLora

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


def check_styles(loras: tuple[tuple[Path, float], ...], family: str, model: str) -> None:
    """Refuse a style file before any work: not a LoRA diffusers loads, or made for another family."""
    from lcm_desktop.core.lora_file import check_lora_fits, inspect_lora

    for path, _weight in loras:
        if not Path(path).is_file():
            raise ModelFormatError(f"The style LoRA {path} does not exist; check the --lora path.")
        check_lora_fits(inspect_lora(path), family=family, model=model)


def fuse_styles(pipe, loras: tuple[tuple[Path, float], ...], model: str) -> tuple[BakedLora, ...]:
    """Bake style LoRAs into the UNet and text encoders at their weights, as the app applies them live:
    ``load_lora_weights`` each (adapter ``style<i>``), ``set_adapters(names, weights)``, ``fuse_lora``, unload.

    The same diffusers calls as the PyTorch engine (``lcm_desktop/engine/styles.py``), so the baked model
    equals the live one at these weights.  A style that adds no layer is a ConversionError, never a no-op.
    """
    from lcm_desktop.core.lora_file import check_lora_fits, inspect_lora, lora_hash

    components = [name for name in ("unet", "text_encoder", "text_encoder_2") if getattr(pipe, name, None) is not None]
    names, baked = [], []
    for index, (path, weight) in enumerate(loras):
        info = inspect_lora(path)
        check_lora_fits(info, family="sdxl" if hasattr(pipe, "text_encoder_2") else "sd", model=model,
                        cross_attention_dim=pipe.unet.config.cross_attention_dim)
        adapter = f"style{index}"
        try:
            pipe.load_lora_weights(str(path), adapter_name=adapter)
        except (ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise ConversionError(f"The style {path.name} does not fit {model} ({_first_line(exc)}); use a style "
                                  "made for this model's base.") from exc
        if not any(_has_adapter(getattr(pipe, name), adapter) for name in components):
            raise ConversionError(f"The style {path.name} changed nothing in {model}: none of its {info.modules} "
                                  "layers matched the model's; use a style made for this model's base.")
        if any(_not_finite(getattr(pipe, name), adapter) for name in components):
            raise ConversionError(f"The style {path.name} holds NaN or infinite weights; it cannot be baked into "
                                  f"{model} (a damaged file: get it again).")
        names.append(adapter)
        baked.append(BakedLora(info.name, lora_hash(path), float(weight), str(Path(path).resolve())))
    try:
        pipe.set_adapters(names, [float(weight) for _, weight in loras])
        pipe.fuse_lora(components=components, lora_scale=1.0, adapter_names=names)
        pipe.unload_lora_weights()
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise ConversionError(f"Baking the styles into {model} failed ({_first_line(exc)}).") from exc
    left = [name for name in components if any("lora" in key for key in getattr(pipe, name).state_dict())]
    if left:
        raise ConversionError(f"fusing the styles left LoRA layers in the {', '.join(left)}; the LoRA format is "
                              "not supported.")
    return tuple(baked)


def _not_finite(module, adapter: str) -> bool:
    """Whether an adapter's loaded weights hold NaN or infinity (written here, not taken from the engine's
    ``finite`` module: the converter imports only core of the app)."""
    import torch

    return any(adapter in name and param.dtype.is_floating_point and not bool(torch.isfinite(param).all())
               for name, param in module.named_parameters())


def _has_adapter(module, adapter: str) -> bool:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(isinstance(layer, BaseTunerLayer) and adapter in getattr(layer, "lora_A", {})
               for layer in module.modules())
