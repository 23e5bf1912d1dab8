"""What a model folder is, answered once: kind, family, native size and defaults (no torch, no Qt).

    info = describe_model(path)
    info.kind          # ModelKind.DIFFUSERS | COREML (ours, with manifest.json) | APPLE_COREML (Apple's layout)
    info.defaults      # ModelDefaults(steps=4, guidance_scale=8.5, width=512, height=512, …)

Every front end (CLI, app, doctor, model list) asks here, and the engine caches the answer at load.
Cheap: only JSON configs are read (and, for Apple's layout, the packages' input shapes), never
weights — the engine's loaders check those.  A model may refine its defaults in ``lcm_desktop.json``
(steps, guidance, size, example prompt).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from .errors import LcmError, ModelFormatError, ModelNotFoundError, UnsafeModelError
from .manifest import MANIFEST_NAME, TINY_DECODER, VAE_ENCODER, Manifest
from .model_files import read_json
from .model_folder import PICKLE_HINT, PICKLE_SUFFIXES
from .presets import PRESETS, SamplerPreset, default_guidance, preset_for_scheduler, presets_for
from .request import LCM_ORIGINAL_STEPS

ModelFamily = Literal["sd", "sdxl"]
RECOMMENDATIONS_FILE = "lcm_desktop.json"
DEFAULT_STEPS = 4
DEFAULT_LCM_GUIDANCE = 8.5  # LatentConsistencyModelPipeline's default
DEFAULT_PLAIN_GUIDANCE = 1.0  # plain UNet + LCM-LoRA: 1–2 recommended; 1 = no CFG batch


class ModelKind(StrEnum):
    DIFFUSERS = "diffusers"  # a diffusers folder: runs on the PyTorch backend
    COREML = "coreml"  # converted by `python -m convert` (manifest.json)
    APPLE_COREML = "apple-coreml"  # Apple ml-stable-diffusion's layout of .mlpackage files

    @property
    def is_coreml(self) -> bool:
        return self is not ModelKind.DIFFUSERS


@dataclass(frozen=True)
class ModelDefaults:
    steps: int = DEFAULT_STEPS
    guidance_scale: float = DEFAULT_LCM_GUIDANCE
    width: int = 512
    height: int = 512
    example_prompt: str | None = None  # the model's own example (the built-in model understands only its grammar)


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    name: str
    kind: ModelKind
    family: ModelFamily
    defaults: ModelDefaults
    guidance_embedding: bool  # an LCM with w-embedding (one UNet call a step); else a plain UNet (LCM-LoRA)
    has_image_encoder: bool = False
    has_tiny_decoder: bool = False
    fixed_size: bool = False  # Core ML: converted for one size only
    baked_styles: tuple[tuple[str, float], ...] = ()  # Core ML: styles fused in at conversion (name, weight)
    original_steps: int = LCM_ORIGINAL_STEPS  # the distillation schedule's length (its scheduler's
    # ``original_inference_steps``): how many points an image-to-image strength leaves (core.request)
    unet_in_channels: int = 4  # 9: an inpainting UNet (latents + mask + masked-picture latents; engine/inpaint.py)

    @property
    def inpainting(self) -> bool:
        """An inpainting UNet: it takes the mask and the masked picture as input (any model can inpaint)."""
        return self.unet_in_channels == 9
    preset: SamplerPreset = PRESETS[0]  # the sampler it was made for (core.presets): LCM unless its folder says

    @property
    def presets(self) -> tuple[SamplerPreset, ...]:
        """The samplers this model can run, its own first (the app's sampler list)."""
        return presets_for(self.preset)

    @property
    def cfg_capable(self) -> bool:
        """Classifier-free guidance (and so a negative prompt) applies: plain UNets only."""
        return not self.guidance_embedding

    @property
    def native_size(self) -> tuple[int, int]:
        return self.defaults.width, self.defaults.height


def model_kind(path: Path) -> ModelKind | None:
    """The kind of folder ``path`` is, from file names alone; ``None`` when it is no model folder."""
    from .coreml_layout import is_apple_layout

    # exists(), not is_file(): a FIFO or folder in their place is then reported by the reader, by name.
    if (path / MANIFEST_NAME).exists():
        return ModelKind.COREML
    if (path / "model_index.json").exists():
        return ModelKind.DIFFUSERS
    if is_apple_layout(path):
        return ModelKind.APPLE_COREML
    return None


def describe_model(path: Path | str) -> ModelInfo:
    """Describe the model folder at ``path``; one-line ``LcmError`` when it is not one."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelNotFoundError(f"Model not found: {path} does not exist; pass a model folder.")
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafeModelError(f"Refusing to load {path.name}: {PICKLE_HINT}.")
        raise ModelFormatError(
            f"{path.name} is a single file; import it first with `lcm-desktop models import {path}` "
            "or pass a model folder."
        )
    kind = model_kind(path)
    if kind is None:
        raise ModelFormatError(
            f"{path} is not a model folder (no model_index.json, manifest.json or .mlpackage files); "
            "pass a diffusers folder or one made by `python -m convert`."
        )
    if kind is ModelKind.DIFFUSERS:
        return _describe_diffusers(path)
    from .coreml_layout import read_coreml_manifest

    return _describe_coreml(path, kind, read_coreml_manifest(path))


def _describe_diffusers(path: Path) -> ModelInfo:
    index = read_json(path / "model_index.json")
    unet, vae = (read_json(path / name / "config.json") if (path / name).is_dir() else {} for name in ("unet", "vae"))
    sample = unet.get("sample_size", 64)
    sample = sample[0] if isinstance(sample, list) and sample else sample
    side = _int(sample, 64) * vae_scale_factor(vae)
    guided = unet.get("time_cond_proj_dim") is not None
    family: ModelFamily = "sdxl" if "text_encoder_2" in index or "tokenizer_2" in index else "sd"
    preset = _preset(path, _optional_json(path / "scheduler" / "scheduler_config.json"))
    defaults = _refined(path, _preset_defaults(preset, guided, side, side))
    return ModelInfo(path, path.name, ModelKind.DIFFUSERS, family, defaults, guided, has_image_encoder=True,
                     original_steps=_original_steps(path / "scheduler" / "scheduler_config.json"),
                     unet_in_channels=_int(unet.get("in_channels"), 4), preset=preset)


def _describe_coreml(path: Path, kind: ModelKind, manifest: Manifest) -> ModelInfo:
    guided = manifest.time_cond_proj_dim is not None
    scheduler = _optional_json(path / manifest.scheduler_config) if manifest.scheduler_config else {}
    preset = _preset(path, scheduler, manifest.sampler)
    base = _preset_defaults(preset, guided, manifest.width, manifest.height)
    refined = _refined(path, base)
    # One converted size: the recommendations may not move it.
    defaults = ModelDefaults(refined.steps, refined.guidance_scale, manifest.width, manifest.height,
                             refined.example_prompt)
    family: ModelFamily = "sdxl" if manifest.family == "sdxl" else "sd"
    return ModelInfo(path, manifest.name or path.name, kind, family, defaults, guided,
                     has_image_encoder=manifest.component(VAE_ENCODER) is not None,
                     has_tiny_decoder=manifest.component(TINY_DECODER) is not None, fixed_size=True,
                     baked_styles=tuple((lora.name, lora.weight) for lora in manifest.loras),
                     original_steps=_original_steps(path / manifest.scheduler_config) if manifest.scheduler_config
                     else LCM_ORIGINAL_STEPS, unet_in_channels=manifest.in_channels, preset=preset)


def _preset(path: Path, scheduler: dict[str, Any], recorded: str | None = None) -> SamplerPreset:
    """The folder's sampler: ``lcm_desktop.json``'s ``sampler``, else the manifest's (Core ML), else its
    scheduler config's class and spacing (``core.presets.preset_for_scheduler``)."""
    recommended = _optional_json(path / RECOMMENDATIONS_FILE).get("sampler")
    return preset_for_scheduler(scheduler, recommended if isinstance(recommended, str) else recorded)


def _preset_defaults(preset: SamplerPreset, guided: bool, width: int, height: int) -> ModelDefaults:
    """Steps and guidance from the preset (LCM: 4 steps, 8.5 embedded or 1 plain; Turbo: 1 step, guidance 0)."""
    model_guidance = DEFAULT_LCM_GUIDANCE if guided else DEFAULT_PLAIN_GUIDANCE
    return ModelDefaults(preset.default_steps, default_guidance(preset, guided, model_guidance), width, height)


def _original_steps(config: Path) -> int:
    """``original_inference_steps`` of a scheduler config (LCMScheduler's 50 when absent or unreadable)."""
    return _int(_optional_json(config).get("original_inference_steps"), LCM_ORIGINAL_STEPS)


def vae_scale_factor(vae_config: dict[str, Any]) -> int:
    """Pixels per latent cell: 2 ** (number of VAE blocks − 1) (8 for SD and SDXL)."""
    blocks = vae_config.get("block_out_channels") or vae_config.get("decoder_block_out_channels") or [0, 0, 0, 0]
    return 2 ** (len(blocks) - 1) if isinstance(blocks, list) and blocks else 8


_ALIASES = {"recommended_steps": "steps", "recommended_guidance_scale": "guidance_scale",
            "native_width": "width", "native_height": "height"}


def _refined(path: Path, defaults: ModelDefaults) -> ModelDefaults:
    """``defaults`` with what the folder's ``lcm_desktop.json`` recommends (a nicety: ignored when unreadable)."""
    extra = _optional_json(path / RECOMMENDATIONS_FILE)
    values: dict[str, Any] = {}
    for key, value in extra.items():
        key = _ALIASES.get(key, key)
        if key in ("steps", "width", "height") and isinstance(value, int) and not isinstance(value, bool) and value > 0:
            values[key] = value
        elif key == "guidance_scale" and isinstance(value, (int, float)) and not isinstance(value, bool):
            values[key] = float(value)
        elif key == "example_prompt" and isinstance(value, str) and value.strip():
            values[key] = value.strip()[:1000]
    return ModelDefaults(**{**defaults.__dict__, **values})


def _optional_json(path: Path) -> dict[str, Any]:
    """An optional JSON object (recommendations are a nicety): {} when it is missing or unreadable."""
    if not path.exists():
        return {}
    try:
        return read_json(path)
    except LcmError:
        return {}


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
