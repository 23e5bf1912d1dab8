"""One structure control of a request (``ControlSpec``): a picture, the control model that reads it, how strongly
and over which part of the steps — ControlNet or T2I-Adapter, as diffusers' pipelines take them.

    ControlSpec(Path("ring.png"), model="lcm-demo-scribble", scale=1.0, preprocess=Preprocess.SCRIBBLE)

``image``: a path or a PIL image, fitted to the output size when the job runs by the starting image's rule
(``core.init_image``).  ``model``: a control model's name (catalog id, installed name) or its folder; the front
end resolves names (``models.resolve.resolve_control``).  ``scale``: diffusers' ``controlnet_conditioning_scale``
/ ``adapter_conditioning_scale``.  ``start``/``end``: the fractions of the steps the control is applied over
(diffusers' ``control_guidance_start``/``_end``: step i of n runs it when ``i/n ≥ start`` and ``(i+1)/n ≤ end``).
``preprocess``: what turns the picture into the control image (``core.preprocess``).  Plain Python: no torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from .errors import InvalidRequestError

MAX_CONTROLS = 4
MAX_CONTROL_SCALE = 4.0  # diffusers takes any; A1111's ControlNet extension's slider stops at 2


class Preprocess(StrEnum):
    NONE = "none"  # the picture is the control image as it is
    SCRIBBLE = "scribble"  # lines as drawn: white on black (dark-on-light paper is inverted)
    CANNY = "canny"  # edges of any picture (OpenCV's Canny)


@dataclass(frozen=True)
class ControlSpec:
    image: Any = field(compare=False)
    model: str | Path
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0
    preprocess: Preprocess = Preprocess.NONE

    def __post_init__(self) -> None:
        image = self.image
        if isinstance(image, str):
            object.__setattr__(self, "image", Path(image))
        elif not isinstance(image, Path) and not all(hasattr(image, a) for a in ("mode", "size", "convert")):
            raise InvalidRequestError("control image", type(image).__name__, "a file path or a PIL image")
        model = self.model
        if isinstance(model, str):
            if not model.strip():
                raise InvalidRequestError("control model", model, "a control model's name or folder")
        elif not isinstance(model, Path):
            raise InvalidRequestError("control model", type(model).__name__, "a control model's name or folder")
        for name, low, high in (("scale", 0.0, MAX_CONTROL_SCALE), ("start", 0.0, 1.0), ("end", 0.0, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidRequestError(f"control {name}", value, f"a number from {low:g} to {high:g}")
            if not low <= value <= high:
                raise InvalidRequestError(f"control {name}", value, f"from {low:g} to {high:g}")
            object.__setattr__(self, name, float(value))
        if self.start >= self.end:
            raise InvalidRequestError("control start", self.start, f"less than its end ({self.end:g})")
        try:
            object.__setattr__(self, "preprocess", Preprocess(self.preprocess))
        except ValueError:
            raise InvalidRequestError("control preprocess", self.preprocess,
                                      f"one of {', '.join(p.value for p in Preprocess)}") from None

    @property
    def model_label(self) -> str:
        """How the control model is named in a PNG's parameters: its name, or a folder's last part."""
        if isinstance(self.model, Path) or "/" in self.model or "\\" in self.model:
            return Path(self.model).name
        return self.model

    def applies_at(self, step: int, steps: int) -> bool:
        """Whether step ``step`` (0-based) of ``steps`` runs this control (diffusers' ``controlnet_keep``)."""
        return not (step / steps < self.start or (step + 1) / steps > self.end)


def check_controls(controls: Any) -> tuple[ControlSpec, ...]:
    """A request's ``controls`` as a tuple of ``ControlSpec`` (at most ``MAX_CONTROLS``)."""
    items = tuple(controls) if isinstance(controls, (list, tuple)) else controls
    if not isinstance(items, tuple) or not all(isinstance(c, ControlSpec) for c in items):
        raise InvalidRequestError("controls", controls, "a tuple of ControlSpec(image, model, …)")
    if len(items) > MAX_CONTROLS:
        raise InvalidRequestError("controls", len(items), f"at most {MAX_CONTROLS} controls")
    return items


A1111_KEY = "ControlNet {}"  # AUTOMATIC1111's ControlNet extension: "ControlNet 0", "ControlNet 1", …
_A1111_PAIR = re.compile(r"\s*([\w ]+):\s*([^,]*)(?:,|$)")


@dataclass(frozen=True)
class ControlRecord:
    """What an image records of one control (the picture itself is not recorded, as a starting image is not)."""

    model: str
    preprocess: str = Preprocess.NONE.value
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0

    @classmethod
    def of(cls, spec: ControlSpec) -> ControlRecord:
        return cls(spec.model_label, spec.preprocess.value, spec.scale, spec.start, spec.end)

    def to_a1111(self) -> str:
        """``Module: scribble, Model: NAME, Weight: 1, Guidance Start: 0, Guidance End: 1`` (the extension's words)."""
        model = self.model.translate(str.maketrans("", "", ",:"))
        return (f"Module: {self.preprocess}, Model: {model}, Weight: {self.scale:g}, "
                f"Guidance Start: {self.start:g}, Guidance End: {self.end:g}")

    @classmethod
    def from_a1111(cls, text: str) -> ControlRecord | None:
        """The inverse of ``to_a1111`` (tolerant: unknown keys ignored); ``None`` without a model."""
        pairs = {k.strip(): v.strip() for k, v in _A1111_PAIR.findall(text)}
        model = pairs.get("Model", "")
        if not model or model == "None":
            return None
        try:
            return cls(model[:200], pairs.get("Module", "none")[:40], float(pairs.get("Weight", 1)),
                       float(pairs.get("Guidance Start", 0)), float(pairs.get("Guidance End", 1)))
        except ValueError:
            return None

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "preprocess": self.preprocess, "scale": self.scale, "start": self.start,
                "end": self.end}

    @classmethod
    def from_json(cls, data: Any) -> ControlRecord | None:
        """A record from our JSON chunk (strangers' files: every field type-checked), else ``None``."""
        if not isinstance(data, dict) or not isinstance(data.get("model"), str) or not data["model"]:
            return None
        numbers = [data.get(k, d) for k, d in (("scale", 1.0), ("start", 0.0), ("end", 1.0))]
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n) for n in numbers):
            return None
        preprocess = data.get("preprocess", "none")
        if preprocess not in {p.value for p in Preprocess}:
            return None
        return cls(data["model"][:1000], preprocess, *(float(n) for n in numbers))
