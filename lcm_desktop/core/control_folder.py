"""What a control model folder is, checked before any weights load (no torch): a diffusers ``ControlNetModel``
or ``T2IAdapter`` folder, safetensors only, and whether it fits a base model.

    control = inspect_control_folder(path)          # ControlFolder(kind, family, …) or one LcmError line
    check_control_fits(control, base)               # family and widths of the base's UNet (BaseUnet)

A control folder holds ``config.json`` (its ``_class_name`` on the allow-list below: nothing else is ever
imported on a folder's say-so) and ``*.safetensors`` weights; pickles are refused.  A ControlNet is SDXL-class
when it has SDXL's size conditioning (``addition_embed_type: text_time``); an adapter when it is a
``full_adapter_xl``.  A ControlNet fits a UNet with its cross-attention width and block widths; an adapter one
whose block widths its channels give (an SD1.5 adapter's [320, 640, 1280, 1280] fits SD1.5's UNet).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from .errors import ModelFormatError, ModelNotFoundError, UnsafeModelError
from .model_files import read_json, repair_advice
from .model_folder import PICKLE_HINT, PICKLE_SUFFIXES, check_data_files, check_safetensors


class ControlKind(StrEnum):
    CONTROLNET = "controlnet"  # runs beside the UNet at every step (down and mid residuals)
    ADAPTER = "t2i-adapter"  # runs once per image (features added inside the UNet's down blocks)


CONTROL_CLASSES = {"ControlNetModel": ControlKind.CONTROLNET, "T2IAdapter": ControlKind.ADAPTER}
_ADAPTER_TYPES = {"full_adapter": "sd", "light_adapter": "sd", "full_adapter_xl": "sdxl"}


@dataclass(frozen=True)
class ControlFolder:
    path: Path
    kind: ControlKind
    family: str  # "sd" | "sdxl"
    block_out_channels: tuple[int, ...]  # a ControlNet's block widths; an adapter's channels
    cross_attention_dim: int | None  # ControlNet only
    in_channels: int  # channels of the control image it reads (3; some sketch adapters read 1)
    weight_files: tuple[Path, ...]

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class BaseUnet:
    """The facts of a base model's UNet a control must agree with (from its ``unet/config.json``)."""

    name: str
    family: str
    cross_attention_dim: int
    block_out_channels: tuple[int, ...]

    @classmethod
    def from_config(cls, name: str, family: str, config: dict[str, Any]) -> BaseUnet:
        cross = config.get("cross_attention_dim", 768)
        cross = cross[0] if isinstance(cross, list) and cross else cross
        blocks = config.get("block_out_channels") or []
        return cls(name, family, int(cross) if isinstance(cross, int) else 0,
                   tuple(int(b) for b in blocks if isinstance(b, int)))


def is_control_folder(path: Path) -> bool:
    """Cheap: a folder whose ``config.json`` names a control class (for ``models import`` to tell kinds apart)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        return read_json(config).get("_class_name") in CONTROL_CLASSES
    except Exception:
        return False


def inspect_control_folder(path: Path | str) -> ControlFolder:
    """Validate ``path`` as a ControlNet / T2I-Adapter folder; one ``LcmError`` line when it is not one."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelNotFoundError(f"Control model not found: {path} does not exist; pass a ControlNet or T2I-Adapter "
                                 "folder or a control model's name.")
    if not path.is_dir():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafeModelError(f"Refusing to load {path.name}: {PICKLE_HINT}.")
        raise ModelFormatError(f"{path.name} is a single file; pass the diffusers folder of a ControlNet or "
                               "T2I-Adapter (config.json and .safetensors weights).")
    config_file = path / "config.json"
    if not config_file.exists():
        raise ModelFormatError(f"{path} is not a control model folder (config.json is missing); pass a diffusers "
                               "ControlNetModel or T2IAdapter folder.")
    config = read_json(config_file)
    cls = config.get("_class_name")
    if cls not in CONTROL_CLASSES:
        raise UnsafeModelError(f"Refusing {path.name}: its config.json names {str(cls)[:60]!r}, and a control model "
                               f"must be one of {', '.join(CONTROL_CLASSES)}.")
    check_data_files(path)
    safes = tuple(sorted(path.glob("*.safetensors")))
    if not safes:
        pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise UnsafeModelError(f"Refusing to load {path.name}/{pickles[0]}: {PICKLE_HINT}.")
        raise ModelFormatError(f"{path.name} has no .safetensors weights; {repair_advice(path)}.")
    for file in safes:
        check_safetensors(file)
    kind = CONTROL_CLASSES[cls]
    if kind is ControlKind.CONTROLNET:
        cross = config.get("cross_attention_dim", 1280)
        cross = cross[0] if isinstance(cross, list) and cross else cross
        family = "sdxl" if config.get("addition_embed_type") == "text_time" else "sd"
        blocks = config.get("block_out_channels", [320, 640, 1280, 1280])
        channels = config.get("conditioning_channels", 3)
    else:
        adapter_type = config.get("adapter_type", "full_adapter")
        if adapter_type not in _ADAPTER_TYPES:
            raise ModelFormatError(f"{path.name} is a T2I-Adapter of an unknown type {str(adapter_type)[:40]!r}; "
                                   f"LCM Desktop runs {', '.join(_ADAPTER_TYPES)}.")
        family, cross = _ADAPTER_TYPES[adapter_type], None
        blocks = config.get("channels", [320, 640, 1280, 1280])
        channels = config.get("in_channels", 3)
    if not (isinstance(blocks, list) and blocks and all(isinstance(b, int) and b > 0 for b in blocks)):
        raise ModelFormatError(f"{path.name}/config.json has no valid block widths; {repair_advice(config_file)}.")
    if not (isinstance(channels, int) and channels in (1, 3)):
        raise ModelFormatError(f"{path.name} reads {channels!r}-channel control images; LCM Desktop gives 1 or 3.")
    return ControlFolder(path, kind, family, tuple(blocks), cross if isinstance(cross, int) else None, channels,
                         safes)


def check_control_fits(control: ControlFolder, base: BaseUnet) -> None:
    """Raise ``ModelFormatError`` (one line naming both) when ``control`` was not made for ``base``'s architecture."""
    if control.family != base.family:
        raise ModelFormatError(
            f"The control model {control.name} is {_family(control.family)} and {base.name} is "
            f"{_family(base.family)}; pick a control model made for {_family(base.family)}.")
    if control.kind is ControlKind.CONTROLNET:
        if control.cross_attention_dim != base.cross_attention_dim or \
                control.block_out_channels != base.block_out_channels:
            raise ModelFormatError(
                f"The ControlNet {control.name} (cross-attention {control.cross_attention_dim}, blocks "
                f"{list(control.block_out_channels)}) does not fit {base.name} (cross-attention "
                f"{base.cross_attention_dim}, blocks {list(base.block_out_channels)}); pick one made for this base.")
    elif control.block_out_channels[: len(base.block_out_channels)] != base.block_out_channels:
        raise ModelFormatError(
            f"The T2I-Adapter {control.name} (channels {list(control.block_out_channels)}) does not fit {base.name} "
            f"(blocks {list(base.block_out_channels)}); pick one made for this base.")


def _family(family: str) -> str:
    return "SDXL-class" if family == "sdxl" else "SD1.5-class"
