"""What a user asks for (``GenerationRequest``) and what they get back (``GenerationResult``).

A request is validated when it is made: a bad value raises ``InvalidRequestError`` naming the
field, the value and the allowed range, before any model work starts.  ``None`` for size,
guidance or seed means "the model's default" (or a fresh random seed); the engine fills them
in with ``resolved()`` and the result carries the filled-in request, so every image can be
reproduced from what is recorded.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .control import ControlSpec, check_controls
from .errors import InvalidRequestError
from .presets import StrengthRule, preset_named, schedule_length
from .prompt_syntax import check_prompt

MIN_SIDE, MAX_SIDE, SIDE_MULTIPLE = 64, 2048, 8
MAX_STEPS = 50
MAX_BATCH = 8
MAX_GUIDANCE = 30.0
MAX_SEED = 2**32 - 1
MAX_LORA_WEIGHT = 4.0  # AUTOMATIC1111's sliders stop at ±2; community recipes rarely pass ±3
MAX_LORAS = 16


LCM_ORIGINAL_STEPS = 50  # the distillation schedule's length (LCMScheduler's ``original_inference_steps``)
DEFAULT_STRENGTH = 0.6  # image-to-image when none is given: keeps a sketch's layout, repaints its surface (app and CLI)


def schedule_points(strength: float, original_steps: int = LCM_ORIGINAL_STEPS) -> int:
    """How many points of the LCM distillation schedule a strength leaves (``LCMScheduler.set_timesteps``)."""
    return int(original_steps * strength)


def check_steps_for_strength(steps: int, strength: float, original_steps: int = LCM_ORIGINAL_STEPS) -> None:
    """Image-to-image runs ``steps`` denoiser calls on the ``schedule_points`` left by ``strength``: too few
    points for the steps is one ``InvalidRequestError`` naming both values and what works."""
    points = schedule_points(strength, original_steps)
    if points >= steps:
        return
    least = math.ceil(steps / original_steps * 1000) / 1000
    while schedule_points(least, original_steps) < steps:  # 29/50 * 50 is 28.999… in floating point
        least = round(least + 0.001, 3)
    fewer = f" (or at most {points} step{'s' if points != 1 else ''} at this strength)" if points else ""
    raise InvalidRequestError("strength", strength, f"at least {least:g} with {steps} steps{fewer}")


def fit_steps_to_strength(steps: int, strength: float, original_steps: int = LCM_ORIGINAL_STEPS,
                          sampler: str | None = None) -> tuple[int, str]:
    """The one strength → steps policy (app, CLI and API): image-to-image runs at most the schedule points the
    strength leaves, so asking for more steps than that lowers them, with a note saying so ("" when nothing
    changed).  A strength that leaves no point at all is one ``InvalidRequestError``.
    Text-to-image (strength 1) keeps ``steps`` up to the schedule's length.
    ``sampler``: a preset name; a TRUNCATE preset (DDIM, Euler: ``core.presets.StrengthRule``) keeps its steps (its
    schedule is lengthened instead) and only checks that such a schedule exists; TCD's schedule is drawn from the
    distillation schedule, so it keeps LCM's rule (at most the points a strength leaves)."""
    if sampler is not None:
        preset = preset_named(sampler)
        if preset.strength_rule is StrengthRule.TRUNCATE and not preset.capped:
            schedule_length(preset, steps, strength, original_steps)
            return steps, ""
    points = schedule_points(strength, original_steps)
    if points < 1:
        least = math.ceil(1000 / original_steps) / 1000
        raise InvalidRequestError("strength", strength, f"at least {least:g} (below that no step of the "
                                  f"{original_steps}-point LCM schedule is left)")
    if steps <= points:
        return steps, ""
    return points, (f"{points} of the {steps} steps run: at strength {strength:g} the LCM schedule has {points} "
                    f"point{'s' if points != 1 else ''} (raise the strength to run more).")


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


def _check_int(name: str, value: Any, low: int, high: int, extra: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(name, value, f"a whole number from {low} to {high}{extra}")
    if not low <= value <= high:
        raise InvalidRequestError(name, value, f"from {low} to {high}{extra}")


@dataclass(frozen=True)
class LoraWeight:
    """One style LoRA by its installed name (``lcm-desktop models styles``) and the weight it is applied at.

    The front end resolves names to files (``models.styles``); the engine gets them through its resolver.
    """

    name: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidRequestError("loras", self.name, "a style name (see `lcm-desktop models styles`)")
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise InvalidRequestError("loras", w, f"a weight from {-MAX_LORA_WEIGHT:g} to {MAX_LORA_WEIGHT:g}")
        if not -MAX_LORA_WEIGHT <= w <= MAX_LORA_WEIGHT:
            raise InvalidRequestError("loras", w, f"a weight from {-MAX_LORA_WEIGHT:g} to {MAX_LORA_WEIGHT:g} "
                                      f"(for {self.name})")
        object.__setattr__(self, "weight", float(w))


@dataclass(frozen=True)
class GenerationRequest:
    """One text-to-image or image-to-image job.

    steps: LCM denoising steps (2–8 typical; up to 50 allowed).
    guidance_scale: for guidance-embedding LCMs the embedded w + 1 (pipeline default 8.5);
        for plain UNets (LCM-LoRA) > 1 turns on classifier-free guidance with the negative prompt.
    width/height: pixels, multiples of 8 from 64 to 2048; ``None`` → the model's native size.
    seed: 0 … 2**32−1; image *i* of a batch uses ``seed + i``; ``None`` → random, recorded.
    tiny_decoder: decode the final image with the model's tiny decoder (AutoencoderTiny) when it has one;
        image-to-image then encodes the starting image with its encoder too (the fast, live path).
    init_image: the starting image (image-to-image): a path (``Path``) or a PIL image (the app's canvas);
        ``None`` → text-to-image.  It is read and fitted to width × height when the job runs
        (``core.init_image``: cover, centre crop); a path is kept as the path, so a request stays cheap to copy.
    strength: how far from the starting image, in (0, 1]: 1.0 starts from pure noise at the first
        timestep; 0.3 keeps most of the picture.  ``steps`` is always the number of denoiser calls
        (LCM: strength shortens the 50-point distillation schedule; see ``engine.sampler``).
    loras: style LoRAs applied on top of the model, each with its weight (PyTorch: live, any number;
        Core ML: baked in at conversion).  A name may appear once.
    inpaint: a mask on the starting image (``core.mask.Inpaint``: mask, blur, whole/only-masked area, overlay,
        outpainting); ``None`` → the whole picture changes.  Needs ``init_image``.
    sampler: a preset's name (``core.presets``: lcm, tcd, hyper-sd, …; aliases and A1111 labels are read too and
        stored as the name); ``None`` → the model's own preset.  Whether the model can run it is checked against
        the model (``core.presets.check_sampler``).
    eta: TCD's gamma in [0, 1]; ``None`` → the preset's default (0.3 for tcd, 1.0 for hyper-sd).
    controls: structure controls (ControlNet / T2I-Adapter), each a ``core.control.ControlSpec``.
    """

    prompt: str
    negative_prompt: str = ""
    steps: int = 4
    guidance_scale: float | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    batch_size: int = 1
    tiny_decoder: bool = False
    init_image: Any = field(default=None, compare=False)
    strength: float = 1.0
    loras: tuple[LoraWeight, ...] = ()
    inpaint: Any = field(default=None, compare=False)  # core.mask.Inpaint
    sampler: str | None = None
    eta: float | None = None
    controls: tuple[ControlSpec, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            raise InvalidRequestError("prompt", self.prompt, "text")
        if not isinstance(self.negative_prompt, str):
            raise InvalidRequestError("negative_prompt", self.negative_prompt, "text")
        check_prompt("prompt", self.prompt)
        check_prompt("negative_prompt", self.negative_prompt)
        _check_int("steps", self.steps, 1, MAX_STEPS)
        _check_int("batch_size", self.batch_size, 1, MAX_BATCH)
        if self.guidance_scale is not None:
            g = self.guidance_scale
            if isinstance(g, bool) or not isinstance(g, (int, float)) or not math.isfinite(g):
                raise InvalidRequestError("guidance_scale", g, f"a number from 0 to {MAX_GUIDANCE:g}")
            if not 0.0 <= g <= MAX_GUIDANCE:
                raise InvalidRequestError("guidance_scale", g, f"from 0 to {MAX_GUIDANCE:g}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is None:
                continue
            _check_int(name, value, MIN_SIDE, MAX_SIDE, f" and a multiple of {SIDE_MULTIPLE}")
            if value % SIDE_MULTIPLE:
                raise InvalidRequestError(name, value, f"a multiple of {SIDE_MULTIPLE} (from {MIN_SIDE} to {MAX_SIDE})")
        if self.seed is not None:
            _check_int("seed", self.seed, 0, MAX_SEED)
        self._check_init_image()
        self._check_loras()
        if self.inpaint is not None:
            from .mask import Inpaint

            if not isinstance(self.inpaint, Inpaint):
                raise InvalidRequestError("inpaint", type(self.inpaint).__name__, "a core.mask.Inpaint")
            if self.init_image is None:
                raise InvalidRequestError("mask", "without a starting image", "used with init_image (the picture "
                                          "it masks)")
        self._check_sampler()

    def _check_sampler(self) -> None:
        if self.sampler is not None:
            if not isinstance(self.sampler, str):
                raise InvalidRequestError("sampler", self.sampler, "a sampler name (lcm, tcd, hyper-sd, …)")
            object.__setattr__(self, "sampler", preset_named(self.sampler).name)
        e = self.eta
        if e is not None and (isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e)
                              or not 0.0 <= e <= 1.0):
            raise InvalidRequestError("eta", e, "a number from 0 to 1")
        if e is not None:
            object.__setattr__(self, "eta", float(e))
        object.__setattr__(self, "controls", check_controls(self.controls))

    def _check_loras(self) -> None:
        loras = tuple(self.loras) if isinstance(self.loras, (list, tuple)) else self.loras
        if not isinstance(loras, tuple) or not all(isinstance(lora, LoraWeight) for lora in loras):
            raise InvalidRequestError("loras", self.loras, "a tuple of LoraWeight(name, weight)")
        names = [lora.name for lora in loras]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise InvalidRequestError("loras", ", ".join(twice), "each style once (give one weight per style)")
        if len(loras) > MAX_LORAS:
            raise InvalidRequestError("loras", len(loras), f"at most {MAX_LORAS} styles")
        object.__setattr__(self, "loras", loras)

    def _check_init_image(self) -> None:
        s = self.strength
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or not 0.0 < s <= 1.0:
            raise InvalidRequestError("strength", s, "a number greater than 0 and at most 1")
        image = self.init_image
        if image is None:
            if s != 1.0:
                raise InvalidRequestError("strength", s, "1 without a starting image (init_image)")
            return
        if isinstance(image, str):
            object.__setattr__(self, "init_image", Path(image))
        elif not isinstance(image, Path) and not all(hasattr(image, a) for a in ("mode", "size", "convert")):
            raise InvalidRequestError("init_image", type(image).__name__, "a file path or a PIL image")

    @property
    def styles(self) -> tuple[LoraWeight, ...]:
        """The styles this request applies: ``loras`` and then the prompt's ``<lora:name:weight>`` tags (as
        AUTOMATIC1111 users write them; the text encoder never sees the tags).  A style named both ways takes
        the weight given in ``loras``; a tag repeated takes its first weight.  Raises InvalidRequestError for
        a bad tag or too many styles."""
        from .prompt_syntax import prompt_loras

        styles, names = list(self.loras), {lora.name for lora in self.loras}
        for tag in prompt_loras(self.prompt):
            if tag.name not in names:
                styles.append(LoraWeight(tag.name, tag.weight))
                names.add(tag.name)
        if len(styles) > MAX_LORAS:
            raise InvalidRequestError("loras", len(styles), f"at most {MAX_LORAS} styles (with the prompt's tags)")
        return tuple(styles)

    @property
    def is_img2img(self) -> bool:
        return self.init_image is not None

    @property
    def is_resolved(self) -> bool:
        return None not in (self.guidance_scale, self.width, self.height, self.seed)

    def resolved(
        self, *, width: int, height: int, guidance_scale: float, seed: int | None = None
    ) -> GenerationRequest:
        """A copy with every ``None`` filled in (the given defaults, a random seed)."""
        return replace(
            self,
            width=self.width if self.width is not None else width,
            height=self.height if self.height is not None else height,
            guidance_scale=self.guidance_scale if self.guidance_scale is not None else float(guidance_scale),
            seed=self.seed if self.seed is not None else (seed if seed is not None else random_seed()),
        )

    @property
    def seeds(self) -> list[int]:
        """The seed of each image in the batch (``seed + i``, wrapping at 2**32)."""
        if self.seed is None:
            raise InvalidRequestError("seed", None, "resolved before the seeds are asked for")
        return [(self.seed + i) % (MAX_SEED + 1) for i in range(self.batch_size)]


@dataclass(frozen=True)
class StepProgress:
    """Reported after every denoising step.  ``denoised`` is the backend's latent tensor (B, 4, h, w)."""

    step: int  # 1-based
    total: int
    elapsed: float  # seconds since the loop started
    denoised: Any = None


@dataclass(frozen=True)
class Timings:
    """Seconds spent in each phase of one generation."""

    load: float = 0.0  # 0 when the model was already loaded
    encode: float = 0.0
    steps: tuple[float, ...] = ()
    decode: float = 0.0
    total: float = 0.0

    @property
    def per_step(self) -> float:
        return sum(self.steps) / max(len(self.steps), 1)

    def summary(self) -> dict[str, float]:
        """The phases without the per-step list (what the history keeps)."""
        return {"load": self.load, "encode": self.encode, "decode": self.decode, "total": self.total}


@dataclass(frozen=True)
class GenerationResult:
    """Images (PIL), the resolved request, and what it cost."""

    request: GenerationRequest
    images: list[Any]
    seeds: list[int]
    model_name: str
    backend: str  # e.g. "torch:cpu:float32", "coreml:CPU_AND_NE"
    timings: Timings = field(default_factory=Timings)
    denoiser_calls: int = 0
    negative_prompt_ignored: bool = False
    encoder_cache_hit: bool = False
    dropped_words: tuple[int, int] = (0, 0)  # words cut from (prompt, negative prompt): only by a Core ML model
    # converted before --max-prompt-chunks (77 tokens); PyTorch and newer Core ML models encode long prompts in chunks
    lora_hashes: tuple[tuple[str, str], ...] = ()  # (style name, A1111 short hash) of each style used, request order

    @property
    def truncation_note(self) -> str:
        """One sentence when a prompt was cut, else ""."""
        prompt, negative = self.dropped_words
        parts = [f"the last {n} word{'s' if n != 1 else ''} of the {what}" for n, what in
                 ((prompt, "prompt"), (negative, "negative prompt")) if n]
        if not parts:
            return ""
        text = (f"{' and '.join(parts)} {'were' if prompt + negative != 1 else 'was'} dropped: this Core ML model "
                "reads at most 77 tokens (the image records the text it used; convert it again with "
                "--max-prompt-chunks to take more).")
        return text[0].upper() + text[1:]
