"""Image parameters ⇄ the PNG text chunk ``parameters`` (the AUTOMATIC1111 format).

    a red circle on a blue background
    Negative prompt: blurry
    Steps: 4, Sampler: LCM, CFG scale: 8.5, Seed: 123, Size: 512x512, Model hash: 1a2b3c4d5e, Model: lcm-demo

Many tools (sd-parsers, A1111's PNG Info, Civitai) read this chunk, so our images carry their
settings wherever they are dragged.  Parsing is tolerant: missing fields stay ``None``.

That text format cannot hold every prompt: a prompt with a line ``Negative prompt: …`` or
``Steps: …`` reads back as other settings.  So each PNG also carries a JSON chunk named
``lcm_desktop`` with the exact request; our own reader prefers it.  Both chunks come from
strangers' files too: the JSON is size-limited and type-checked field by field.

Style LoRAs: the text records ``Lora hashes: "name: 1a2b3c4d5e6f, other: …"`` as AUTOMATIC1111 writes it
(names without ``:`` and ``,``; hashes: ``core.lora_file.lora_hash``), and A1111's prompt keeps its
``<lora:name:w>`` tags; the JSON chunk keeps each style's name and weight (``loras``).

Structure controls: the text records ``ControlNet 0: "Module: scribble, Model: NAME, Weight: 1, Guidance Start: 0,
Guidance End: 1"`` as AUTOMATIC1111's ControlNet extension writes it; the JSON chunk keeps them (``controls``:
``core.control.ControlRecord``), and either reads back into ``controls`` (the pictures are not recorded).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .atomic import publish_file
from .control import A1111_KEY, ControlRecord
from .presets import find_preset
from .request import LoraWeight

log = logging.getLogger(__name__)

PARAMETERS_KEY = "parameters"
JSON_KEY = "lcm_desktop"
JSON_VERSION = 1
MAX_JSON_CHARS = 1_000_000  # a real request is a few hundred bytes; refuse anything absurd
# What we write per text chunk (UTF-8 bytes): two maximal prompts (core/prompt_syntax.MAX_PROMPT_CHARS) fit with
# room to spare, and it stays far below what PNG readers accept (Pillow: 1 MB per chunk, else the PNG won't open).
MAX_CHUNK_BYTES = 256 * 1024
_NEGATIVE = "Negative prompt:"
LORA_HASHES = "Lora hashes"  # AUTOMATIC1111's key
DENOISING_STRENGTH = "Denoising strength"  # A1111's key for an image-to-image strength
ETA = "Eta"  # A1111's key for an ancestral/TCD sampler's eta
SCHEDULE_TYPE = "Schedule type"  # A1111's key for the timestep spacing ("SGM Uniform": trailing)
_NO_SYMBOLS = str.maketrans("", "", ":,")  # A1111 removes these from the names it lists
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
    loras: tuple[LoraWeight, ...] = ()  # the styles and their weights (from our JSON chunk; () in A1111's text)
    strength: float | None = None  # image-to-image: how far from the starting picture; None: text-to-image
    eta: float | None = None  # TCD's gamma (the sampler's, ``core.presets``); None: a sampler without eta

    @property
    def sampler_name(self) -> str | None:
        """The preset ``sampler`` names (its A1111 label, e.g. "Euler a" → euler-a-trailing), for a request;
        ``None`` when it names none we run."""
        preset = find_preset(self.sampler)
        return preset.name if preset is not None else None
    controls: tuple[ControlRecord, ...] = ()  # structure controls (the JSON chunk, else the text's ControlNet N)

    @property
    def lora_hashes(self) -> dict[str, str]:
        """``Lora hashes`` as a dict name → short hash (A1111's ``"a: 1a2b…, b: 3c4d…"``); {} when absent."""
        text = self.extra.get(LORA_HASHES, "")
        pairs = (item.rpartition(":") for item in text.split(",") if ":" in item)
        return {name.strip(): value.strip() for name, _, value in pairs if name.strip() and value.strip()}

    @property
    def style_names(self) -> tuple[str, ...]:
        """The styles this image was made with: the JSON's ``loras``, else the names in ``Lora hashes``."""
        return tuple(lora.name for lora in self.loras) if self.loras else tuple(self.lora_hashes)

    def to_json(self) -> str:
        """The exact parameters as JSON (the ``lcm_desktop`` chunk)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["loras"] = [[lora.name, lora.weight] for lora in self.loras]
        data["controls"] = [control.to_json() for control in self.controls]
        return json.dumps({"version": JSON_VERSION, **data}, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ImageParameters | None:
        """Parameters from an ``lcm_desktop`` chunk; ``None`` if it is not one we can trust."""
        if len(text) > MAX_JSON_CHARS:
            return None
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or data.get("version") != JSON_VERSION:
            return None
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = _checked(f.name, data[f.name])
            if value is _INVALID:
                return None
            values[f.name] = value
        return cls(**values)

    def to_text(self) -> str:
        pairs: list[tuple[str, Any]] = [
            ("Steps", self.steps),
            ("Sampler", self.sampler),
            ("CFG scale", None if self.guidance_scale is None else f"{self.guidance_scale:g}"),
            ("Seed", self.seed),
            ("Size", f"{self.width}x{self.height}" if self.width and self.height else None),
            ("Model hash", self.model_hash),
            ("Model", self.model),
            (DENOISING_STRENGTH, None if self.strength is None else f"{self.strength:g}"),
            (ETA, None if self.eta is None else f"{self.eta:g}"),
            *self.extra.items(),
        ]
        line = ", ".join(f"{k}: {_quote(str(v))}" for k, v in pairs if v is not None)
        lines = [self.prompt]
        if self.negative_prompt:
            lines.append(f"{_NEGATIVE} {self.negative_prompt}")
        lines.append(line)
        return "\n".join(lines)

    @classmethod
    def parse(cls, text: str) -> ImageParameters:
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
        known = {"Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model", DENOISING_STRENGTH, ETA}
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
            strength=_strength(_to_float(settings.get(DENOISING_STRENGTH))),
            eta=_eta(_to_float(settings.get(ETA))),
            controls=_a1111_controls(settings),
        )


_INVALID = object()
_STRINGS = {"prompt", "negative_prompt"}
_OPTIONAL_STRINGS = {"sampler", "model", "model_hash"}
_INTS = {"steps", "seed", "width", "height"}


def _checked(name: str, value: Any) -> Any:
    """``value`` if it has the type field ``name`` needs, else ``_INVALID``."""
    if name in _STRINGS:
        return value if isinstance(value, str) else _INVALID
    if name in _OPTIONAL_STRINGS:
        return value if value is None or isinstance(value, str) else _INVALID
    if name in _INTS:
        return value if value is None or (isinstance(value, int) and not isinstance(value, bool)) else _INVALID
    if name == "guidance_scale":
        ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
        return (None if value is None else float(value)) if ok else _INVALID
    if name == "loras":
        return _loras(value)
    if name == "strength":
        ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
        return _strength(None if value is None else float(value)) if ok else _INVALID
    if name == "eta":
        ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
        return _eta(None if value is None else float(value)) if ok else _INVALID
    if name == "controls":
        if not isinstance(value, list) or len(value) > 16:
            return _INVALID
        records = [ControlRecord.from_json(item) for item in value]
        return _INVALID if None in records else tuple(records)
    if name == "extra":
        ok = isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        return dict(value) if ok else _INVALID
    return _INVALID


def _loras(value: Any) -> Any:
    """``[[name, weight], …]`` → LoraWeights, or ``_INVALID``."""
    if not isinstance(value, list) or len(value) > 64:
        return _INVALID
    loras = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], (int, float)) and not isinstance(item[1], bool)):
            return _INVALID
        try:
            loras.append(LoraWeight(item[0], float(item[1])))
        except ValueError:
            return _INVALID
    return tuple(loras)


def _strength(value: float | None) -> float | None:
    """A strength in (0, 1], else None (a stranger's file may say anything)."""
    return value if value is not None and 0.0 < value <= 1.0 else None


def _eta(value: float | None) -> float | None:
    """An eta in [0, 1], else None."""
    return value if value is not None and 0.0 <= value <= 1.0 else None
def control_text(controls: tuple[ControlRecord, ...]) -> dict[str, str]:
    """``{"ControlNet 0": "Module: …, Model: …, Weight: …, Guidance Start: …, Guidance End: …", …}``."""
    return {A1111_KEY.format(i): control.to_a1111() for i, control in enumerate(controls)}


def _a1111_controls(settings: dict[str, str]) -> tuple[ControlRecord, ...]:
    records = []
    for i in range(16):
        text = settings.get(A1111_KEY.format(i))
        if text is None:
            break
        record = ControlRecord.from_a1111(text)
        if record is not None:
            records.append(record)
    return tuple(records)


def lora_hashes_text(hashes: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> str:
    """The ``Lora hashes`` value: ``name: hash, name2: hash2`` (names without ``:`` and ``,``, as A1111 writes)."""
    return ", ".join(f"{name.translate(_NO_SYMBOLS)}: {value}" for name, value in hashes)


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


def save_png(image: Any, path: Path, parameters: ImageParameters, *, replace: bool = False) -> Path:
    """Write a PIL image as PNG with the ``parameters`` and ``lcm_desktop`` chunks, atomically.

    An existing ``path`` is never replaced unless ``replace``: ``FileExistsError`` instead.
    """
    info = _png_info(parameters)
    return publish_file(Path(path), lambda handle: image.save(handle, format="PNG", pnginfo=info), replace=replace)


def png_bytes(image: Any, parameters: ImageParameters) -> bytes:
    """The PNG ``save_png`` writes, in memory (the local API answers with it, base64-encoded)."""
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=_png_info(parameters))
    return buffer.getvalue()


def _png_info(parameters: ImageParameters) -> Any:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    text, data = parameters.to_text(), parameters.to_json()
    info.add_text(PARAMETERS_KEY, _capped(text))
    if len(data.encode("utf-8")) <= MAX_CHUNK_BYTES:
        info.add_itxt(JSON_KEY, data)
    else:  # cannot be cut and still parse; the text chunk still says what made the image
        log.warning("the %s chunk (%d bytes) is over %d bytes and was left out", JSON_KEY, len(data), MAX_CHUNK_BYTES)
    return info


def _capped(text: str) -> str:
    """``text`` cut to ``MAX_CHUNK_BYTES`` of UTF-8 (at a character), marked with "…" when cut."""
    data = text.encode("utf-8")
    if len(data) <= MAX_CHUNK_BYTES:
        return text
    return data[: MAX_CHUNK_BYTES - 3].decode("utf-8", errors="ignore") + "…"


def read_png_parameters(path: Path) -> ImageParameters | None:
    """The parameters a PNG carries (our JSON chunk first, else the A1111 text), or ``None``."""
    from PIL import Image

    with Image.open(path) as image:
        chunk, text = image.info.get(JSON_KEY), image.info.get(PARAMETERS_KEY)
    exact = ImageParameters.from_json(chunk) if isinstance(chunk, str) else None
    if exact is not None:
        return exact
    return ImageParameters.parse(text) if isinstance(text, str) else None
