"""Known models: ``resources/catalog.json`` read into frozen entries (no network, no torch).

An entry says where a model lives on the Hugging Face Hub (repo, revision, the file patterns to
fetch), what it is (kind, family, file layout), and how to use it (native resolution,
recommended steps and guidance, the base an LCM-LoRA or UNet-only LCM needs, the tiny decoder
that fits).  The built-in demo model ships inside the app (``source: builtin``) and comes first.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ModelFormatError, ModelNotFoundError
from ..core.paths import resource_path
from ..core.presets import find_preset

KINDS = ("lcm", "lcm-lora", "base", "tiny-decoder", "distill-lora", "distilled")  # distill-lora: TCD, Hyper-SD…
# on a base; distilled: a whole few-step pipeline (Turbo, SDXS)
NON_COMMERCIAL = ("sai-nc-community", "cc-by-nc-4.0")  # licences `models list` marks "(non-commercial)"
SOURCES = ("builtin", "hub")
FAMILIES = ("sd", "sdxl")
# diffusers: a whole pipeline folder; unet: a UNet folder (config.json + weights) that replaces a
# base's UNet; lora: LoRA weights applied to a base; decoder: an AutoencoderTiny folder.
LAYOUTS = ("diffusers", "unet", "lora", "decoder")
ALLOWED_SUFFIXES = (".safetensors", ".json", ".txt")
CATALOG_FILE = "catalog.json"


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    kind: str
    source: str
    family: str
    layout: str
    size_mb: int
    licence: str
    repo_id: str | None = None
    revision: str | None = None
    allow_patterns: tuple[str, ...] = ()
    variant: str | None = None
    resolution: int | None = None
    recommended_resolution: int | None = None
    steps: int | None = None
    guidance: float | None = None
    requires: str | None = None
    tiny_decoder: str | None = None
    description: str = ""
    sampler: str | None = None  # the sampler preset it was made for (core.presets); None: LCM

    @property
    def non_commercial(self) -> bool:
        return self.licence.lower() in NON_COMMERCIAL

    @property
    def size_bytes(self) -> int:
        return self.size_mb * 1_000_000

    @property
    def downloadable(self) -> bool:
        return self.source == "hub"

    @property
    def usable_alone(self) -> bool:
        """A diffusers pipeline by itself (an LCM-LoRA or UNet-only LCM needs its base)."""
        return self.layout == "diffusers"


class Catalog:
    """The catalog in file order (the built-in demo first)."""

    def __init__(self, entries: list[CatalogEntry]):
        self._entries = list(entries)
        self._by_id = {e.id: e for e in self._entries}

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._by_id

    def find(self, model_id: str) -> CatalogEntry | None:
        return self._by_id.get(model_id)

    def get(self, model_id: str) -> CatalogEntry:
        """The entry with this id, or ``ModelNotFoundError`` naming the closest ids."""
        entry = self._by_id.get(model_id)
        if entry is None:
            close = difflib.get_close_matches(model_id, list(self._by_id), n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ModelNotFoundError(
                f"No catalog model with id {model_id!r}; {hint}`lcm-desktop models list` shows the ids."
            )
        return entry

    def by_repo(self, repo_id: str) -> CatalogEntry | None:
        return next((e for e in self._entries if e.repo_id == repo_id), None)

    def all_by_repo(self, repo_id: str) -> list[CatalogEntry]:
        """Every entry fetched from ``repo_id`` (Hyper-SD's LoRAs share one repo, one file each)."""
        return [e for e in self._entries if e.repo_id == repo_id]


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Read and validate the catalog (``resources/catalog.json`` by default)."""
    path = Path(path) if path is not None else resource_path(CATALOG_FILE)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        raw_entries = data["models"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelFormatError(f"The model catalog {path} cannot be read ({exc}); reinstall LCM Desktop.") from exc
    entries = [_entry(raw, path) for raw in raw_entries]
    _check_references(entries, path)
    return Catalog(entries)


def _entry(raw: dict[str, Any], path: Path) -> CatalogEntry:
    def bad(message: str) -> ModelFormatError:
        return ModelFormatError(f"The model catalog {path} is invalid: {message}; reinstall LCM Desktop.")

    if not isinstance(raw, dict) or "id" not in raw:
        raise bad(f"an entry without an id ({raw!r:.60})")
    known = set(CatalogEntry.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise bad(f"{raw['id']} has unknown fields {sorted(unknown)}")
    try:
        entry = CatalogEntry(**{**raw, "allow_patterns": tuple(raw.get("allow_patterns", ()))})
    except TypeError as exc:
        raise bad(f"{raw['id']}: {exc}") from exc
    for field, allowed in (("kind", KINDS), ("source", SOURCES), ("family", FAMILIES), ("layout", LAYOUTS)):
        if getattr(entry, field) not in allowed:
            raise bad(f"{entry.id}.{field} must be one of {allowed}, got {getattr(entry, field)!r}")
    if entry.sampler is not None and find_preset(entry.sampler) is None:
        raise bad(f"{entry.id}.sampler must name a sampler preset, got {entry.sampler!r}")
    if entry.source == "hub":
        if not entry.repo_id or "/" not in entry.repo_id or not entry.revision or not entry.allow_patterns:
            raise bad(f"{entry.id} needs repo_id (owner/name), revision and allow_patterns")
        for pattern in entry.allow_patterns:
            # A pattern that ends in one of these suffixes can only match such files: never a pickle.
            if not pattern.endswith(ALLOWED_SUFFIXES):
                raise bad(f"{entry.id} pattern {pattern!r} could fetch files other than safetensors/configs")
    return entry


def _check_references(entries: list[CatalogEntry], path: Path) -> None:
    ids = [e.id for e in entries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ModelFormatError(f"The model catalog {path} repeats ids {duplicates}; reinstall LCM Desktop.")
    by_id = {e.id: e for e in entries}
    for e in entries:
        for field, kind in (("requires", "base"), ("tiny_decoder", "tiny-decoder")):
            target = getattr(e, field)
            if target is not None and (target not in by_id or by_id[target].kind != kind):
                raise ModelFormatError(
                    f"The model catalog {path} is invalid: {e.id}.{field} must name a {kind} entry, got {target!r}."
                )
        if e.layout in ("lora", "unet") and e.requires is None:
            raise ModelFormatError(f"The model catalog {path} is invalid: {e.id} needs `requires` (its base).")
