"""Which sampler a model runs, answered once: LCM and its successors as presets of the same loop (plain Python).

LCM started a family that keeps the UNet and changes the sampler.  A ``SamplerPreset`` says how one member
samples (diffusers' scheduler class and config overrides, default steps and eta, guidance, the image-to-image
strength rule, whether it was distilled for one step) and what it is for:

=================  ====================  ===================================================  =========
name               label (A1111 name)    scheduler (diffusers)                                made by
=================  ====================  ===================================================  =========
lcm                LCM                   LCMScheduler                                         LCM, LCM-LoRA
tcd                TCD                   TCDScheduler, eta 0.3                                TCD-LoRA
hyper-sd           TCD                   TCDScheduler, eta 1.0, 1 step                        Hyper-SD 1-step
ddim-trailing      DDIM                  DDIMScheduler, trailing, no clipping, ᾱ_final = ᾱ_0  Hyper-SD N-step, PCM
euler-a-trailing   Euler a               EulerAncestralDiscreteScheduler, trailing, 1 step    SD/SDXL-Turbo, SDXS
euler-trailing     Euler                 EulerDiscreteScheduler, trailing                     SDXL-Lightning
=================  ====================  ===================================================  =========

``preset_for_scheduler(config, recommended)`` picks a folder's preset (``core.model_info.describe_model``
records it as ``ModelInfo.preset``; the sampler asks the same function for components built elsewhere);
``presets_for(info)`` is what a model can run (the consistency family, or the 1-step adversarial family);
``check_sampler``/``check_eta`` are the validation the CLI and the app share; ``live_steps`` is the 1-step
live tier.  The engine builds the scheduler (``engine/sampler.py``); this module never imports diffusers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import InvalidRequestError

MAX_SCHEDULE = 1000  # diffusers' num_train_timesteps: the longest schedule a truncating preset may ask for


class Guidance(StrEnum):
    """How a preset is guided.

    EMBEDDING: LCM — a UNet with ``time_cond_proj_dim`` embeds w = guidance − 1 (one call a step); a plain UNet
        (LCM-LoRA) runs classifier-free guidance when guidance > 1 (the rule of diffusers' SD pipelines too).
    CFG: the same rule, but a plain UNet's default guidance is 1 (no CFG batch) and CFG with a negative
        prompt is the user's choice (Hyper-SD's CFG LoRAs, PCM's "normal" LoRAs).
    NONE: distilled without guidance (Turbo, SDXS, Lightning): guidance above 1 is refused, the default is 0.
    """

    EMBEDDING = "embedding"
    CFG = "cfg"
    NONE = "none"


class StrengthRule(StrEnum):
    """How image-to-image strength meets the schedule (``steps`` is always the number of denoiser calls).

    SCHEDULE: ``set_timesteps(steps, strength=)`` cuts the 50-point distillation schedule to
        ``int(50·strength)`` points and spreads the steps over them (``LatentConsistencyModelImg2ImgPipeline``).
    TRUNCATE: diffusers' ``StableDiffusionImg2ImgPipeline.get_timesteps``: a schedule of n points whose last
        ``int(n·strength)`` run; n is the smallest length that leaves ``steps`` points (``schedule_length``).
    """

    SCHEDULE = "schedule"
    TRUNCATE = "truncate"


class Family(StrEnum):
    """Which distillation a preset samples for (a model runs the presets of its own family)."""

    CONSISTENCY = "consistency"  # LCM, TCD, Hyper-SD, PCM: consistency-trajectory models
    ADVERSARIAL = "adversarial"  # SD/SDXL-Turbo, SDXS, SDXL-Lightning: adversarially distilled, 1–8 steps


@dataclass(frozen=True)
class SamplerPreset:
    name: str  # what `--sampler` takes and the app's sampler list shows
    label: str  # AUTOMATIC1111's sampler name, written as ``Sampler:`` in the PNG
    scheduler: str  # the diffusers scheduler class
    overrides: tuple[tuple[str, Any], ...]  # scheduler config overrides (``from_config(config, **overrides)``)
    family: Family
    default_steps: int
    guidance: Guidance
    strength_rule: StrengthRule
    one_step: bool  # distilled for a single step: the live tier runs it at 1 (``live_steps``)
    default_eta: float | None = None  # TCD's gamma; None: the scheduler takes no eta
    capped: bool = False  # its schedule is drawn from the distillation schedule (TCD): at most that many points
    schedule_type: str | None = None  # A1111's ``Schedule type`` (trailing spacing is its "SGM Uniform")
    made_by: str = ""
    notes: str = ""

    @property
    def takes_eta(self) -> bool:
        return self.default_eta is not None

    @property
    def config_overrides(self) -> dict[str, Any]:
        return dict(self.overrides)


_TRAILING = (("timestep_spacing", "trailing"),)

PRESETS: tuple[SamplerPreset, ...] = (
    SamplerPreset("lcm", "LCM", "LCMScheduler", (), Family.CONSISTENCY, 4, Guidance.EMBEDDING,
                  StrengthRule.SCHEDULE, one_step=False, made_by="LCM models, LCM-LoRA",
                  notes="the default: 2–8 steps; guidance-embedding UNets take guidance 1–2 as w"),
    SamplerPreset("tcd", "TCD", "TCDScheduler", (), Family.CONSISTENCY, 4, Guidance.CFG, StrengthRule.TRUNCATE,
                  one_step=False, default_eta=0.3, capped=True, made_by="TCD-LoRA (SD1.5, SDXL; MIT)",
                  notes="4–8 steps; eta (gamma) 0.3 by default: higher is smoother, 0 deterministic"),
    SamplerPreset("hyper-sd", "TCD", "TCDScheduler", (), Family.CONSISTENCY, 1, Guidance.CFG, StrengthRule.TRUNCATE,
                  one_step=True, default_eta=1.0, capped=True, made_by="Hyper-SD 1-step unified LoRA (openrail++)",
                  notes="1 step at eta 1.0; lower eta keeps more detail at more steps"),
    SamplerPreset("ddim-trailing", "DDIM", "DDIMScheduler",
                  _TRAILING + (("clip_sample", False), ("set_alpha_to_one", False)), Family.CONSISTENCY, 4,
                  Guidance.CFG, StrengthRule.TRUNCATE, one_step=False, schedule_type="SGM Uniform",
                  made_by="Hyper-SD 2/4/8-step LoRAs, PCM",
                  notes="the step count the LoRA was distilled for; Hyper-SD's CFG LoRAs take guidance 5–8"),
    SamplerPreset("euler-a-trailing", "Euler a", "EulerAncestralDiscreteScheduler", _TRAILING, Family.ADVERSARIAL,
                  1, Guidance.NONE, StrengthRule.TRUNCATE, one_step=True, schedule_type="SGM Uniform",
                  made_by="SD-Turbo, SDXL-Turbo (non-commercial), SDXS-512",
                  notes="1–4 steps without guidance"),
    SamplerPreset("euler-trailing", "Euler", "EulerDiscreteScheduler", _TRAILING, Family.ADVERSARIAL, 4,
                  Guidance.NONE, StrengthRule.TRUNCATE, one_step=False, schedule_type="SGM Uniform",
                  made_by="SDXL-Lightning 2/4/8-step (openrail++)", notes="the step count the checkpoint was made for"),
)
DEFAULT_PRESET = "lcm"
ALIASES = {"pcm": "ddim-trailing", "hyper-sd-n": "ddim-trailing", "turbo": "euler-a-trailing",
           "sdxs": "euler-a-trailing", "lightning": "euler-trailing", "euler-a": "euler-a-trailing",
           "euler": "euler-trailing", "ddim": "ddim-trailing"}
_BY_NAME = {p.name: p for p in PRESETS}
# A scheduler config → its preset: (class, trailing spacing) → name.  A base's own scheduler (Euler or PNDM,
# leading spacing) is what an LCM-LoRA base ships with: LCM, as before presets existed.
_FROM_SCHEDULER = {("LCMScheduler", False): "lcm", ("LCMScheduler", True): "lcm", ("TCDScheduler", False): "tcd",
                   ("TCDScheduler", True): "tcd", ("DDIMScheduler", True): "ddim-trailing",
                   ("EulerAncestralDiscreteScheduler", True): "euler-a-trailing",
                   ("EulerDiscreteScheduler", True): "euler-trailing"}


def names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def preset_named(name: str) -> SamplerPreset:
    """The preset called ``name`` (an alias such as ``turbo``, or its A1111 label such as ``Euler a``, too)."""
    preset = find_preset(name)
    if preset is None:
        raise InvalidRequestError("sampler", name, f"one of {', '.join(names())}")
    return preset


def find_preset(name: str | None) -> SamplerPreset | None:
    """``preset_named`` without the error (``None`` for an unknown name): PNG metadata from strangers."""
    if not isinstance(name, str):
        return None
    key = name.strip()
    key = ALIASES.get(key.lower(), key.lower())
    if key in _BY_NAME:
        return _BY_NAME[key]
    by_label = [p for p in PRESETS if p.label.lower() == name.strip().lower()]
    return by_label[0] if by_label else None  # "TCD" → tcd (the first preset with that label)


def preset_for_scheduler(config: Mapping[str, Any], recommended: str | None = None) -> SamplerPreset:
    """A folder's preset: its recommendation (``lcm_desktop.json``'s ``sampler``) when that names one, else
    read from its ``scheduler_config.json`` (class and spacing), else LCM."""
    chosen = find_preset(recommended)
    if chosen is not None:
        return chosen
    cls = config.get("_class_name") if isinstance(config, Mapping) else None
    trailing = isinstance(config, Mapping) and config.get("timestep_spacing") == "trailing"
    return _BY_NAME[_FROM_SCHEDULER.get((cls, trailing), DEFAULT_PRESET)]


def presets_for(model: Any) -> tuple[SamplerPreset, ...]:
    """What a model can run (a ``ModelInfo``, or its own preset): its family's presets, its own first."""
    preset = model if isinstance(model, SamplerPreset) else model.preset
    return (preset,) + tuple(p for p in PRESETS if p.family is preset.family and p is not preset)


def check_sampler(name: str, own: SamplerPreset, model: str) -> SamplerPreset:
    """The preset ``name`` if the model (whose own preset is ``own``) can run it; else one clear line."""
    preset = preset_named(name)
    allowed = presets_for(own)
    if preset not in allowed:
        kind = "a consistency-distilled model" if own.family is Family.CONSISTENCY else "a 1-step distilled model"
        raise InvalidRequestError("sampler", name, f"one of {', '.join(p.name for p in allowed)} for {model} "
                                  f"({kind}, made for {own.name})")
    return preset


def check_eta(eta: float | None, preset: SamplerPreset) -> float | None:
    """The eta a run uses: ``None`` → the preset's default; a value for a preset without eta is one clear line."""
    if eta is None:
        return preset.default_eta
    if not preset.takes_eta:
        raise InvalidRequestError("eta", eta, f"left out with the {preset.name} sampler (only TCD samplers take eta: "
                                  f"{', '.join(p.name for p in PRESETS if p.takes_eta)})")
    return eta


def resolve_sampler(request: Any, own: SamplerPreset, model: str) -> Any:
    """A request (``core.request.GenerationRequest``) with its sampler and eta filled in and checked against the
    model whose own preset is ``own``: ``sampler=None`` → ``own``; ``eta=None`` → the preset's default."""
    from dataclasses import replace

    preset = own if request.sampler is None else check_sampler(request.sampler, own, model)
    check_guidance(request.guidance_scale, preset)
    return replace(request, sampler=preset.name, eta=check_eta(request.eta, preset))


def check_guidance(guidance: float | None, preset: SamplerPreset) -> None:
    """A guidance-free preset (Turbo, SDXS, Lightning) refuses guidance above 1 (it was distilled without CFG)."""
    if guidance is not None and preset.guidance is Guidance.NONE and guidance > 1.0:
        raise InvalidRequestError("guidance_scale", guidance, f"at most 1 with the {preset.name} sampler (distilled "
                                  "without classifier-free guidance; 0 is its default)")


def default_guidance(preset: SamplerPreset, guidance_embedding: bool, model_default: float) -> float:
    """The guidance a request without one runs at: the model's, but 0 for a guidance-free preset."""
    if preset.guidance is Guidance.NONE and not guidance_embedding:
        return 0.0
    return model_default


def schedule_length(preset: SamplerPreset, steps: int, strength: float, original_steps: int = 50) -> int:
    """Image-to-image with a TRUNCATE preset: the smallest schedule n whose last ``int(n·strength)`` points
    are ``steps`` (so ``steps`` stay the denoiser calls); text-to-image (strength 1) and SCHEDULE: ``steps``.
    A capped preset (TCD) draws n from its ``original_steps``-point distillation schedule, so n ≤ that."""
    if preset.strength_rule is StrengthRule.SCHEDULE or strength >= 1.0:
        return steps
    n = max(steps, math.ceil(steps / strength) - 1)
    while min(int(n * strength), n) < steps:
        n += 1
    limit = original_steps if preset.capped else MAX_SCHEDULE
    if n > limit:
        least = math.ceil(steps / limit * 1000) / 1000
        while int(limit * least) < steps:  # 29/50 * 50 is 28.999… in floating point
            least = round(least + 0.001, 3)
        raise InvalidRequestError("strength", strength, f"at least {least:g} with {steps} steps and the "
                                  f"{preset.name} sampler")
    return n


def default_steps(info: Any, preset: SamplerPreset | None = None) -> int:
    """The steps Generate runs ``preset`` at on a model (a ``ModelInfo``): the model's own recommendation for
    its own preset, else the chosen preset's default (Hyper-SD 1-step picked on an LCM: 1)."""
    own = info.preset
    preset = preset or own
    return int(info.defaults.steps) if preset.name == own.name else preset.default_steps


def live_steps(info: Any, preset: SamplerPreset | None = None) -> int:
    """The 1-step live tier: Live runs 1 step where the preset (default: the model's own) was distilled for it
    (Hyper-SD 1-step, Turbo, SDXS), else the steps Generate uses (``default_steps``; LCM keeps its 4: at 1 step
    it is a blur).  The front end pairs it with the tiny decoder where the model has one."""
    preset = preset or info.preset
    return 1 if preset.one_step else default_steps(info, preset)


def sampler_choices(presets: Iterable[SamplerPreset]) -> list[tuple[str, str]]:
    """(name, one-line description) for a sampler list (the app's widget, ``--help``)."""
    return [(p.name, f"{p.label} — {p.made_by}") for p in presets]
