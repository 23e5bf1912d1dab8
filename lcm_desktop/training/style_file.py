"""The finished style: one diffusers-format LoRA file, ``<app data>/styles/<name>.safetensors``, with its story.

Keys are those diffusers' ``save_lora_weights`` writes for a PEFT LoRA on the UNet
(``unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight``), so
``pipe.load_lora_weights(file)`` loads it.  Metadata (all strings, as safetensors wants): ``format: pt``,
``lcm_desktop_style`` (JSON: base model, family, trigger word, steps, rank, method …) and kohya's
``ss_tag_frequency`` / ``ss_output_name`` so other tools show the trigger word.  Written with
``core.atomic.publish_file``: a half-written style is never visible, and an existing one is replaced only when
asked.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.atomic import publish_file
from ..core.errors import TrainingError
from ..core.names import check_style_name as check_name
from ..core.paths import AppPaths, resource_path

STYLES_DIR = "styles"
STYLE_SUFFIX = ".safetensors"
METADATA_KEY = "lcm_desktop_style"


@dataclass(frozen=True)
class StyleInfo:
    """What the style file says about itself (``lcm_desktop_style``)."""

    name: str
    base_model: str
    family: str
    trigger: str
    steps: int
    rank: int
    method: str
    size: int
    pictures: int
    loss: str = "l2"


def check_style_name(name: str) -> str:
    """A new style's name: ``core/names.py``'s rule, and not a built-in style's name (which it would hide)."""
    return check_name(name, "name", builtin=(p.stem for p in resource_path(STYLES_DIR).glob(f"*{STYLE_SUFFIX}")))


def style_path(name: str, paths: AppPaths | None = None) -> Path:
    """Where the style named ``name`` lives: ``<app data>/styles/<name>.safetensors``."""
    paths = paths or AppPaths.default()
    return paths.data / STYLES_DIR / f"{check_style_name(name)}{STYLE_SUFFIX}"


def lora_tensors(unet, text_encoder=None) -> dict:
    """The PEFT LoRA weights under diffusers' keys (``unet.<module>.lora_A.weight``, and with a trained text
    encoder ``text_encoder.<module>.lora_A.weight``), contiguous fp32 CPU."""
    from peft.utils import get_peft_model_state_dict

    tensors = {}
    for prefix, module in (("unet", unet), ("text_encoder", text_encoder)):
        if module is not None:  # PEFT names, as save_lora_weights(unet_lora_layers=…, …) writes them
            state = get_peft_model_state_dict(module)
            tensors.update({f"{prefix}.{k}": v.detach().float().cpu().contiguous() for k, v in state.items()})
    return tensors


def style_metadata(info: StyleInfo, captions: list[str] | tuple[str, ...]) -> dict[str, str]:
    """safetensors metadata: ours, plus kohya's tag frequency (comma-separated caption words) and output name."""
    tags = Counter(tag.strip() for caption in captions for tag in caption.split(",") if tag.strip())
    if info.trigger:
        tags[info.trigger] = max(tags.get(info.trigger, 0), len(captions))
    return {
        "format": "pt",
        METADATA_KEY: json.dumps(asdict(info), sort_keys=True),
        "ss_output_name": info.name,
        "ss_tag_frequency": json.dumps({info.name: dict(tags.most_common(50))}),
    }


def write_style(target: Path, tensors: dict, metadata: dict[str, str], *, replace: bool = False) -> Path:
    """Publish the LoRA file atomically; an existing style is an error unless ``replace``."""
    from safetensors.torch import save

    target.parent.mkdir(parents=True, exist_ok=True)
    data = save(tensors, metadata=metadata)
    try:
        return publish_file(target, lambda handle: handle.write(data), replace=replace)
    except FileExistsError as exc:
        raise TrainingError(f"A style named {target.stem!r} exists already ({target}); choose another --name or "
                            "pass --force to replace it.") from exc
    except OSError as exc:
        raise TrainingError(f"Cannot write the style {target} ({exc.strerror or exc}); free some disk space or "
                            "check the folder's permissions.") from exc


def read_style_info(path: Path) -> StyleInfo | None:
    """The ``lcm_desktop_style`` record of a style file, or None for a LoRA made elsewhere."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        raw = (handle.metadata() or {}).get(METADATA_KEY)
    return StyleInfo(**json.loads(raw)) if raw else None
