"""Every input the window offers, in one Qt-free object (napari's ``ViewerModel``, krita's ``Model``).

    session = Session()                          # constructible with no arguments: the defaults
    session.restore(read_png_parameters(png))    # the ONE record → inputs mapping (PNG, history row)
    request = session.to_request(picture, info)  # inputs → a validated GenerationRequest
    data = session.to_settings()                 # one versioned, typed schema (settings.json)
    Session.from_settings(data)                  # … and back, migrating version 1 (the old settings.ini keys)

Assigning a field notifies the listeners with the field's name, and assigning an equal value notifies nobody
(krita's ``PropertyImpl`` setter): a no-op edit never starts a live update.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..core.atomic import publish_file
from ..core.errors import InvalidRequestError, LcmError
from ..core.mask import INPAINT_STRENGTH
from ..core.metadata import ImageParameters
from ..core.model_info import DEFAULT_LCM_GUIDANCE, DEFAULT_STEPS, ModelInfo
from ..core.presets import check_sampler, live_steps, preset_named
from ..core.request import (
    DEFAULT_STRENGTH,
    LCM_ORIGINAL_STEPS,
    MAX_BATCH,
    MAX_GUIDANCE,
    MAX_LORA_WEIGHT,
    MAX_SEED,
    MAX_STEPS,
    GenerationRequest,
    LoraWeight,
    fit_steps_to_strength,
    random_seed,
)
from ..history import HistoryEntry
from .layers import layer_controls, layer_inpaint

log = logging.getLogger(__name__)
SETTINGS_FILE = "session.json"  # in the app's data folder
MAX_SETTINGS_BYTES = 1_000_000
APP_MAX_SEED = 2**31 - 1  # seeds the app draws fit a 32-bit spin box (any seed to 2**32 - 1 restores and runs)
SETTINGS_VERSION = 2  # 1: the QSettings keys of the first releases (see ``_migrate_v1``)
NOT_PICTURE = frozenset({"live", "backend", "output_folder", "api_port", "api_auth"})  # no live update on change
# what is remembered between runs (the seed and size are not)
SAVED = ("model", "backend", "prompt", "negative_prompt", "steps", "guidance_scale", "batch_size", "start_mode",
         "strength", "styles", "output_folder", "api_port", "api_auth")


class StartMode(StrEnum):
    TEXT = "Text"  # text to image
    IMAGE = "Image"  # from an opened, pasted or dropped picture (on the canvas)
    SKETCH = "Sketch"  # from what is painted on the canvas


class EmptyCanvasError(LcmError):
    """Image or Sketch mode with nothing on the canvas to start from."""


@dataclass(eq=False)
class Session:
    prompt: str = ""
    negative_prompt: str = ""
    steps: int = DEFAULT_STEPS
    guidance_scale: float = DEFAULT_LCM_GUIDANCE
    seed: int = 0
    seed_locked: bool = False
    size: tuple[int, int] | None = None  # None: the model's native size
    batch_size: int = 1
    start_mode: StartMode = StartMode.TEXT
    strength: float = DEFAULT_STRENGTH
    styles: tuple[LoraWeight, ...] = ()  # the styles that apply, with their weights (±MAX_LORA_WEIGHT)
    sampler: str = ""  # a preset's name (core.presets); "" : the model's own
    eta: float | None = None  # TCD's gamma; None: the preset's default
    model: str = ""  # the selected model folder ("" : none)
    backend: str = ""  # a BackendChoice key ("" : the model's preferred one)
    live: bool = False
    output_folder: str = ""  # "" : the app's output folder
    api_port: int = 7860  # File ▸ Serve the API on this Mac: its port on 127.0.0.1 …
    api_auth: str = ""  # … and "user:password" (""  : none)
    # structure control (the sketch's Lines layer, and "Edges from picture"): session.layers has the rule
    control_enabled: bool = False
    control_model: str = ""  # a control model's name or folder; "" : the model's own (ModelInfo.default_control)
    control_scale: float = 1.0
    control_edges: bool = False  # a canny control from the start picture as well
    mask_blur: int = 4  # the mask layer's edge softening (the CLI's --mask-blur default)
    _listeners: list[Callable[[str], None]] = field(default_factory=list, repr=False)

    def __setattr__(self, name: str, value: Any) -> None:
        listeners = self.__dict__.get("_listeners")
        if listeners is None or name.startswith("_"):  # during __init__
            object.__setattr__(self, name, value)
            return
        if self.__dict__.get(name, _MISSING) == value:
            return
        object.__setattr__(self, name, value)
        for listener in list(listeners):
            listener(name)

    def subscribe(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """``listener(field_name)`` after every change; returns the function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def update(self, **values: Any) -> None:
        for name, value in values.items():
            if name not in _FIELDS:
                raise AttributeError(f"Session has no input {name!r}")
            setattr(self, name, value)

    def key(self) -> tuple:
        """Every input of the picture as one comparable value: Live starts a new job only when this (and the
        sketch's revision) changed since the last one."""
        return tuple(getattr(self, name) for name in _FIELDS if name not in NOT_PICTURE)

    def new_seed(self) -> int:
        self.seed = random_seed() % (APP_MAX_SEED + 1)
        return self.seed

    # -- inputs → request ------------------------------------------------------------------------
    @property
    def is_img2img(self) -> bool:
        return self.start_mode is not StartMode.TEXT

    def steps_to_run(self, original_steps: int = LCM_ORIGINAL_STEPS) -> tuple[int, str]:
        """The steps a request will run and, when the strength lowers them, why (``core.request``'s rule)."""
        if not self.is_img2img:
            return self.steps, ""
        return fit_steps_to_strength(self.steps, self.strength, original_steps, self.sampler or None)

    def to_request(self, init_image: Any = None, info: ModelInfo | None = None,
                   live: bool = False, lines: Any = None, mask: Any = None,
                   picture: Any = None, resolve_control: Callable[[str], Any] | None = None) -> GenerationRequest:
        """The request these inputs describe.  An unlocked seed is drawn anew here (and shown: it is an input).
        ``init_image`` (the canvas's picture) is used unless the start mode is Text; ``info``, the selected
        model's description, gives its schedule length and whether a negative prompt applies; ``live``: the 1-step
        live tier (a preset distilled for one step runs 1 step live, Generate its own steps).  ``lines`` (the
        sketch's Lines layer, white on black), ``mask`` (its Mask layer, white = repaint) and ``picture`` (the
        canvas's picture, for "Edges from picture"), PIL images or None, are read by ``session.layers``
        (``resolve_control``: a control model's name → its folder).  Raises
        ``InvalidRequestError`` naming the field, or ``EmptyCanvasError``."""
        prompt = self.prompt.strip()
        if not prompt:
            raise InvalidRequestError("prompt", "", "some text describing the image")
        if self.is_img2img and init_image is None:
            raise EmptyCanvasError(f"{self.start_mode.value} mode starts from the canvas, which is empty: open, "
                                   "paste (Ctrl+V) or drop a picture on it, paint a sketch, or start from Text.")
        if self.sampler and info is not None:
            check_sampler(self.sampler, info.preset, info.name)  # a restored sampler this model cannot run
        if not self.seed_locked:
            self.new_seed()
        inpaint = layer_inpaint(self, mask) if self.is_img2img else None
        strength = (INPAINT_STRENGTH if inpaint is not None else self.strength) if self.is_img2img else 1.0
        steps, _ = self.steps_to_run(info.original_steps if info is not None else LCM_ORIGINAL_STEPS)
        if inpaint is not None:
            steps = self.steps  # strength 1 runs every step
        if live and info is not None:
            preset = preset_named(self.sampler) if self.sampler else info.preset
            steps = live_steps(info, preset) if preset.one_step else steps  # else the user's own steps
        width, height = self.size if self.size else (None, None)
        cfg = info is None or info.cfg_capable
        coreml = info is not None and info.kind.is_coreml  # its styles are baked in at conversion
        controls = layer_controls(self, info, lines, picture, resolve_control)
        return GenerationRequest(
            prompt=prompt, negative_prompt=self.negative_prompt.strip() if cfg else "", steps=steps,
            guidance_scale=round(self.guidance_scale, 2), width=width, height=height, seed=self.seed,
            batch_size=self.batch_size, init_image=init_image if self.is_img2img else None,
            strength=strength, loras=() if coreml else self.styles,
            sampler=self.sampler or None, eta=self.eta, controls=controls, inpaint=inpaint,
        )

    # -- record → inputs (the only mapping) -------------------------------------------------------------
    def restore(self, record: ImageParameters | HistoryEntry,
                find_model: Callable[[str], str | None] | None = None) -> None:
        """Inputs from a PNG's parameters (``core.metadata.read_png_parameters``) or a history row: prompt,
        negative prompt, steps, guidance, seed (locked), size, strength and start mode, styles and weights, and
        the model when ``find_model`` knows its name.  What the record lacks is left as it is."""
        if isinstance(record, HistoryEntry):
            strength = record.strength if record.init_image is not None else None
            styles = tuple(LoraWeight(name, weight) for name, weight in record.loras)
            size, model = (record.width, record.height), record.model
            params = ImageParameters(prompt=record.prompt, negative_prompt=record.negative_prompt,
                                     steps=record.steps, guidance_scale=record.guidance_scale, seed=record.seed,
                                     width=record.width, height=record.height, loras=styles, strength=strength)
        else:
            params = record
            size = (params.width, params.height) if params.width and params.height else None
            model = params.model
        values: dict[str, Any] = {"prompt": params.prompt, "negative_prompt": params.negative_prompt}
        if params.steps:
            values["steps"] = min(max(params.steps, 1), MAX_STEPS)
        if params.guidance_scale is not None and 0 <= params.guidance_scale <= MAX_GUIDANCE:
            values["guidance_scale"] = float(params.guidance_scale)
        if params.seed is not None and 0 <= params.seed <= MAX_SEED:
            values.update(seed=params.seed, seed_locked=True)
        if size is not None:
            values["size"] = tuple(size)
        if params.strength is not None:
            values["strength"] = params.strength
            values["start_mode"] = self.start_mode if self.is_img2img else StartMode.IMAGE
        else:
            values["start_mode"] = StartMode.TEXT
        values["styles"] = tuple(params.loras)
        if isinstance(record, ImageParameters):
            values.update(sampler=params.sampler_name or "", eta=params.eta)
            if params.controls:  # the control pictures are not recorded: its scale comes back, the lines do not
                values["control_scale"] = min(max(float(params.controls[0].scale), 0.0), 2.0)
        if model and find_model is not None:
            folder = find_model(model)
            if folder:
                values["model"] = folder
        self.update(**values)

    # -- settings (one versioned schema) -------------------------------------------------------------
    def to_settings(self) -> dict[str, Any]:
        """What is remembered between runs, as plain JSON values."""
        data: dict[str, Any] = {"version": SETTINGS_VERSION}
        for name in SAVED:
            value = getattr(self, name)
            if name == "styles":
                value = [[lora.name, lora.weight] for lora in value]
            elif name == "start_mode":
                value = value.value
            data[name] = value
        return data

    @classmethod
    def from_settings(cls, data: Mapping[str, Any]) -> Session:
        """A session from ``to_settings()``'s data, or from version 1's keys (the first releases' settings.ini);
        a damaged or unknown value is left at its default, never an error."""
        if not isinstance(data, Mapping):
            return cls()
        if data.get("version") in (None, 1, "1"):
            data = _migrate_v1(data)
        session = cls()
        for name in SAVED:
            if name in data:
                value = _typed(name, data[name])
                if value is not _MISSING:
                    setattr(session, name, value)
        return session


_MISSING = object()
_FIELDS = tuple(f.name for f in fields(Session) if not f.name.startswith("_"))
_V1_KEYS = {"model": "model", "backend": "backend", "prompt": "prompt", "negative": "negative_prompt",
            "steps": "steps", "guidance": "guidance_scale", "strength": "strength", "start_mode": "start_mode",
            "output_folder": "output_folder"}


def _migrate_v1(old: Mapping[str, Any]) -> dict[str, Any]:
    """Version 1 (QSettings INI: every value a string, keys ``negative``, ``guidance``, …) → version 2."""
    data: dict[str, Any] = {"version": SETTINGS_VERSION}
    for key, name in _V1_KEYS.items():
        value = old.get(key)
        if value is None:
            continue
        if name == "steps":
            value = _number(int, value)
        elif name in ("guidance_scale", "strength"):
            value = _number(float, value)
        if value is not None:
            data[name] = value
    return data


def _number(kind: type, value: Any) -> Any:
    try:
        number = kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _typed(name: str, value: Any) -> Any:
    """``value`` as field ``name`` holds it, or ``_MISSING`` when it is not one (a damaged settings file)."""
    if name in ("model", "backend", "prompt", "negative_prompt", "output_folder", "api_auth"):
        return value if isinstance(value, str) else _MISSING
    if name in ("steps", "batch_size", "api_port"):
        low, high = {"steps": (1, MAX_STEPS), "batch_size": (1, MAX_BATCH), "api_port": (1024, 65535)}[name]
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return value if ok else _MISSING
    if name in ("guidance_scale", "strength"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return _MISSING
        ok = 0 <= value <= MAX_GUIDANCE if name == "guidance_scale" else 0 < value <= 1
        return float(value) if ok else _MISSING
    if name == "start_mode":
        return next((mode for mode in StartMode if mode.value == value), _MISSING)
    if name == "styles":
        return _styles(value)
    return _MISSING


def _styles(value: Any) -> Any:
    if not isinstance(value, list):
        return _MISSING
    styles = []
    for item in value:
        try:
            name, weight = item
            styles.append(LoraWeight(name, weight))
        except (TypeError, ValueError):  # InvalidRequestError is a ValueError
            return _MISSING
    names = [s.name for s in styles]
    return tuple(styles) if len(set(names)) == len(names) else _MISSING


def with_style(styles: Iterable[LoraWeight], name: str, weight: float | None) -> tuple[LoraWeight, ...]:
    """``styles`` with ``name`` set to ``weight`` (appended when new), or removed when ``weight`` is None."""
    kept = [s for s in styles if s.name != name]
    if weight is None:
        return tuple(kept)
    weight = max(-MAX_LORA_WEIGHT, min(MAX_LORA_WEIGHT, weight))
    current = [s.name for s in styles]
    if name in current:
        return tuple(replace(s, weight=weight) if s.name == name else s for s in styles)
    return (*kept, LoraWeight(name, weight))


def load_settings(path: Path, legacy: Mapping[str, Any] | None = None) -> Session:
    """The remembered session: ``path`` (``to_settings``'s JSON) when it is there, else ``legacy`` (version 1's
    keys, read by the app from its old settings.ini); an unreadable file is logged and the defaults used."""
    try:
        if path.is_file() and path.stat().st_size <= MAX_SETTINGS_BYTES:
            return Session.from_settings(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("ignoring unreadable settings %s: %s", path, exc)
        return Session()
    return Session.from_settings(legacy or {})


def save_settings(path: Path, session: Session) -> None:
    """Write ``session.to_settings()`` atomically (a crash never leaves half a file)."""
    text = json.dumps(session.to_settings(), ensure_ascii=False, indent=1).encode("utf-8")
    publish_file(path, lambda handle: handle.write(text), replace=True)
