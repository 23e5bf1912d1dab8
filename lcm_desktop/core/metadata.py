"""Image parameters ⇄ the PNG text chunk ``parameters`` (the AUTOMATIC1111 format).

    a red circle on a blue background
    Negative prompt: blurry
    Steps: 4, Sampler: LCM, CFG scale: 8.5, Seed: 123, Size: 512x512, Model hash: 1a2b3c4d5e, Model: lcm-demo

Many tools (sd-parsers, A1111's PNG Info, Civitai) read this chunk, so our images carry their
settings wherever they are dragged.  Parsing is tolerant: missing fields stay ``None``.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PARAMETERS_KEY = "parameters"
_NEGATIVE = "Negative prompt:"
# One "Key: value" pair; values with commas are quoted ("…"), as A1111 writes them.
_PAIR = re.compile(r'\s*([\w ]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


@dataclass(frozen=True)
class ImageParameters:
    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    sampler: str | None = "LCM"
    guidance_scale: float | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None
    model_hash: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def to_text(self) -> str:
        pairs: list[tuple[str, Any]] = [
            ("Steps", self.steps),
            ("Sampler", self.sampler),
            ("CFG scale", None if self.guidance_scale is None else f"{self.guidance_scale:g}"),
            ("Seed", self.seed),
            ("Size", f"{self.width}x{self.height}" if self.width and self.height else None),
            ("Model hash", self.model_hash),
            ("Model", self.model),
            *self.extra.items(),
        ]
        line = ", ".join(f"{k}: {_quote(str(v))}" for k, v in pairs if v is not None)
        lines = [self.prompt]
        if self.negative_prompt:
            lines.append(f"{_NEGATIVE} {self.negative_prompt}")
        lines.append(line)
        return "\n".join(lines)

    @classmethod
    def parse(cls, text: str) -> "ImageParameters":
        """Read an A1111-style parameters text; unknown keys go to ``extra``."""
        lines = text.strip("\n").split("\n")
        settings: dict[str, str] = {}
        if lines and _looks_like_settings(lines[-1]):
            settings = {k.strip(): _unquote(v.strip()) for k, v in _PAIR.findall(lines.pop())}
        prompt_lines, negative_lines, in_negative = [], [], False
        for line in lines:
            if line.startswith(_NEGATIVE):
                in_negative = True
                line = line[len(_NEGATIVE) :].strip()
            (negative_lines if in_negative else prompt_lines).append(line)
        known = {"Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model"}
        width = height = None
        size = settings.get("Size", "")
        if re.fullmatch(r"\d+x\d+", size):
            width, height = (int(v) for v in size.split("x"))
        return cls(
            prompt="\n".join(prompt_lines).strip(),
            negative_prompt="\n".join(negative_lines).strip(),
            steps=_to_int(settings.get("Steps")),
            sampler=settings.get("Sampler"),
            guidance_scale=_to_float(settings.get("CFG scale")),
            seed=_to_int(settings.get("Seed")),
            width=width,
            height=height,
            model=settings.get("Model"),
            model_hash=settings.get("Model hash"),
            extra={k: v for k, v in settings.items() if k not in known},
        )


def _looks_like_settings(line: str) -> bool:
    return bool(re.match(r"\s*Steps:\s*\d", line)) or len(_PAIR.findall(line)) >= 3


def _quote(value: str) -> str:
    if "," in value or "\n" in value or '"' in value or ":" in value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return value


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
    return value


def _to_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _to_float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def save_png(image: Any, path: Path, parameters: ImageParameters) -> Path:
    """Write a PIL image as PNG with the ``parameters`` chunk, atomically (temp file + rename)."""
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    info = PngInfo()
    info.add_text(PARAMETERS_KEY, parameters.to_text())
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".png.part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format="PNG", pnginfo=info)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_png_parameters(path: Path) -> ImageParameters | None:
    """The parameters a PNG carries, or ``None`` when it carries none."""
    from PIL import Image

    with Image.open(path) as image:
        text = image.info.get(PARAMETERS_KEY)
    return ImageParameters.parse(text) if isinstance(text, str) else None
