"""Installed style LoRAs: importing, listing, deleting, and which file a style name means.

    store = StyleStore()
    store.import_file(Path("~/Downloads/papercut.safetensors"))       # checked, copied atomically
    [(s.name, s.info.family_label, s.info.trigger_words) for s in store.styles()]
    engine = Engine(loader, styles=store.path_of)                      # the engine resolves names through us
    store.missing(params.style_names)                                  # styles a dropped PNG used that are not here

Styles live as single files in ``<app data>/styles/<name>.safetensors`` beside the imported models.  The
file is checked before it is copied (``core.lora_file.inspect_lora``: safetensors only, a LoRA format
diffusers loads); whether it fits a model's family is checked when it is used with one (the engine).
"""

from __future__ import annotations

import difflib
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..core.atomic import clean_stale_parts, publish_file
from ..core.errors import InvalidRequestError, LcmError, ModelFormatError, ModelNotFoundError
from ..core.lora_file import SUFFIX, LoraInfo, inspect_lora
from ..core.model_files import check_regular, open_regular
from ..core.names import STYLE_NAME_RULE, check_style_name, is_style_name
from ..core.paths import AppPaths, resource_path
from .disk import DiskUsage, file_size, format_size, free_space

STYLES_DIR = "styles"


@dataclass(frozen=True)
class InstalledStyle:
    name: str
    path: Path
    info: LoraInfo | None  # None: the file is damaged (``problem`` says how)
    problem: str = ""
    builtin: bool = False  # shipped with the app (resources/styles): listed and used, never deleted

    @property
    def size_bytes(self) -> int:
        return self.info.size_bytes if self.info is not None else file_size(self.path)


class StyleStore:
    """The styles folder of one ``AppPaths``; every call reads the folder afresh (it is small)."""

    def __init__(self, paths: AppPaths | None = None, builtin: Path | None = None):
        """``builtin``: the styles shipped with the app (``resources/styles``), read-only; an installed style of
        the same name wins."""
        self.paths = paths or AppPaths.default()
        self.builtin = resource_path(STYLES_DIR) if builtin is None else builtin

    @property
    def folder(self) -> Path:
        return self.paths.data / STYLES_DIR

    def styles(self) -> list[InstalledStyle]:
        """Every installed style, then the built-in ones, by name; a damaged file is listed with its problem."""
        found: dict[str, InstalledStyle] = {}
        shipped = {name.lower() for name in self._builtin_names()}
        for folder, builtin in ((self.folder, False), (self.builtin, True)):
            for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
                if path.name.startswith(".") or path.stem in found:
                    continue
                if not builtin and path.stem.lower() in shipped:  # put there by hand: it never hides the built-in
                    found[path.name] = InstalledStyle(path.stem, path, None, f"{path.name} is named like a built-in "
                                                      "style, which it cannot replace; rename the file")
                    continue
                if not is_style_name(path.stem):  # put there by hand: cannot be asked for by name
                    found[path.stem] = InstalledStyle(path.stem, path, None, f"{path.name} is not named as a style "
                                                      f"is ({STYLE_NAME_RULE}); rename the file", builtin=builtin)
                    continue
                try:
                    found[path.stem] = InstalledStyle(path.stem, path, inspect_lora(path), builtin=builtin)
                except LcmError as exc:
                    found[path.stem] = InstalledStyle(path.stem, path, None, exc.user_message, builtin=builtin)
        return sorted(found.values(), key=lambda style: (style.builtin, style.name.lower()))

    def _file(self, name: str) -> Path | None:
        """The installed file of ``name``, else the built-in one, else None."""
        if not is_style_name(name):  # also keeps "../x" and "a/b" out of the folder
            return None
        shipped = {n.lower(): n for n in self._builtin_names()}  # a built-in name (any case): the built-in file
        if name.lower() in shipped:
            path = self.builtin / f"{shipped[name.lower()]}{SUFFIX}"
            return path if path.is_file() else None
        return next((p for p in (self.folder / f"{name}{SUFFIX}", self.builtin / f"{name}{SUFFIX}")
                     if p.is_file()), None)

    def path_of(self, name: str) -> Path:
        """The file of the installed style ``name`` (an unknown name is one line with close matches)."""
        path = self._file(name)
        if path is not None:
            return path
        installed = [s.name for s in self.styles()]
        close = difflib.get_close_matches(name, installed, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ModelNotFoundError(
            f"No style named {name!r}; {hint}`lcm-desktop models styles` lists the installed styles and "
            "`lcm-desktop models import FILE.safetensors` adds one."
        )

    def missing(self, names: Iterable[str]) -> list[str]:
        """Which of ``names`` (e.g. a dropped PNG's ``style_names``) are not installed, in order: for the GUI's
        "restore styles" message."""
        return [name for name in names if self._file(name) is None]

    def import_file(self, source: Path | str, name: str | None = None, *,
                    disk_usage: DiskUsage = shutil.disk_usage) -> InstalledStyle:
        """Check a LoRA file and copy it in atomically (a hidden temp file, then an exclusive link)."""
        source = Path(source).expanduser()
        if not source.exists():
            raise ModelNotFoundError(f"Cannot import {source}: it does not exist.")
        inspect_lora(source)  # refuses pickles, LyCORIS kinds diffusers cannot load, non-LoRAs
        name = source.stem if name is None else name
        check_style_name(name, "--name", builtin=self._builtin_names())
        target = self.folder / f"{name}{SUFFIX}"
        if target.exists():
            raise InvalidRequestError("--name", name, f"a new style name ({target} exists; `lcm-desktop models rm "
                                      f"{name}` or pick another --name)")
        size = check_regular(source).st_size
        self.folder.mkdir(parents=True, exist_ok=True)
        free, probe = free_space(self.folder, disk_usage)
        if size > free:
            raise ModelFormatError(f"Not enough disk space to import {source.name}: it needs {format_size(size)}, "
                                   f"{format_size(free)} is free in {probe}.")
        clean_stale_parts(self.folder)
        try:
            publish_file(target, lambda out: _copy_into(source, out, size))
        except FileExistsError as exc:
            raise InvalidRequestError("--name", name, "a new style name (one was imported meanwhile)") from exc
        except OSError as exc:
            raise ModelFormatError(f"Could not copy {source.name} into {self.folder} ({exc.strerror or exc}); "
                                   "nothing was imported.") from exc
        return InstalledStyle(name, target, inspect_lora(target))

    def delete(self, name: str) -> int:
        """Delete an installed style; return the bytes freed."""
        path = self.path_of(name)
        if path.parent != self.folder:
            raise InvalidRequestError("style", name, "an imported style (the built-in ones come with the app)")
        size = file_size(path)
        trash = path.with_name(f".trash-{uuid.uuid4().hex[:8]}{SUFFIX}")
        os.replace(path, trash)
        trash.unlink(missing_ok=True)
        return size

    def _builtin_names(self) -> list[str]:
        return [p.stem for p in self.builtin.glob(f"*{SUFFIX}")] if self.builtin.is_dir() else []

    def has(self, name: str) -> bool:
        return not self.missing([name])


def is_lora_file(path: Path | str) -> bool:
    """Whether an import source is a style LoRA (a single .safetensors file whose keys are a LoRA's), as
    opposed to a model folder or a single-file checkpoint; cheap (the header only)."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() != SUFFIX or not path.is_file():
        return False
    from ..core.model_files import read_safetensors_header

    try:
        keys = read_safetensors_header(path).tensors
    except LcmError:
        return False
    lora_like = ("lora_unet_", "lora_te", "lycoris_", "unet.", "text_encoder.", "text_encoder_2.")
    return bool(keys) and all(k.startswith(lora_like) or ".lora" in k or "hada_" in k or "lokr_" in k for k in keys)


def _copy_into(source: Path, out, size: int) -> None:
    with open_regular(source) as src:
        remaining = size
        while remaining > 0 and (chunk := src.read(min(remaining, 1 << 22))):
            out.write(chunk)
            remaining -= len(chunk)

