"""Writing a generation's images: one PNG per image with its parameters chunk, atomically (no Qt, no torch).

Shared by the CLI and the app, so an image saved either way carries the same settings.  No file is
ever replaced by surprise: a name that is taken gets ``-2``, ``-3``, … (``OnExisting.NUMBER``), or is an
error (``OnExisting.FAIL``), or is replaced because the user said so (``OnExisting.REPLACE``).  Each
file is created exclusively, so two processes saving the same name at once cannot both win.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from .core.atomic import clean_stale_parts
from .core.control import ControlRecord
from .core.errors import OutputError
from .core.metadata import LORA_HASHES, SCHEDULE_TYPE, ImageParameters, control_text, lora_hashes_text, save_png
from .core.presets import PRESETS, find_preset
from .core.request import GenerationResult
from .history import History, HistoryEntry


def image_parameters(result: GenerationResult, seed: int, model: str | None = None,
                     model_hash: str | None = None) -> ImageParameters:
    """The parameters of one image of ``result`` (a negative prompt the model ignored is not recorded).

    Image-to-image adds ``Denoising strength`` as AUTOMATIC1111 writes it (the starting image is not recorded);
    styles add ``Lora hashes`` (and the JSON chunk keeps their weights).
    """
    req = result.request
    preset = find_preset(req.sampler) or PRESETS[0]
    extra = {SCHEDULE_TYPE: preset.schedule_type} if preset.schedule_type else {}
    if result.lora_hashes:
        extra[LORA_HASHES] = lora_hashes_text(result.lora_hashes)
    if req.inpaint is not None:  # Mask blur, Inpaint area, Masked area padding (A1111's keys), Outpaint
        extra.update(req.inpaint.parameters())
    controls = tuple(ControlRecord.of(spec) for spec in req.controls)
    extra.update(control_text(controls))
    return ImageParameters(
        prompt=req.prompt, negative_prompt="" if result.negative_prompt_ignored else req.negative_prompt,
        steps=req.steps, guidance_scale=req.guidance_scale, seed=seed, width=req.width, height=req.height,
        model=model or result.model_name, model_hash=model_hash, extra=extra, loras=req.loras,
        strength=req.strength if req.is_img2img else None, sampler=preset.label,
        eta=req.eta if preset.takes_eta else None, controls=controls,
    )


def prepare_folder(folder: Path, fix: str) -> None:
    """Make an output folder (checked: a folder, writable) and remove temp files a crashed save left there."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file, not a folder; {fix}.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the output folder {folder} ({exc.strerror or exc}); {fix}.") from exc
    if not os.access(folder, os.W_OK):
        raise OutputError(f"The output folder {folder} is not writable; {fix}.")
    clean_stale_parts(folder)


class OnExisting(Enum):
    NUMBER = "number"  # default names: take the next free "name-2.png", "name-3.png", …
    FAIL = "fail"  # a name the user chose: an existing file is an error
    REPLACE = "replace"  # the user asked to replace it (--overwrite)


MAX_NUMBERED = 10_000


def save_images(result: GenerationResult, path_for: Callable[[int, int], Path], *, model: str | None = None,
                model_hash: str | None = None, fix: str = "choose another output folder",
                on_existing: OnExisting = OnExisting.NUMBER,
                on_saved: Callable[[Path, ImageParameters, int], None] | None = None) -> list[Path]:
    """Write every image; ``path_for(index, seed)`` names it; ``on_saved`` runs after each file is on disk."""
    written = []
    for index, (image, seed) in enumerate(zip(result.images, result.seeds)):
        params = image_parameters(result, seed, model, model_hash)
        path = save_one(image, path_for(index, seed), params, fix=fix, on_existing=on_existing)
        if on_saved is not None:
            on_saved(path, params, seed)
        written.append(path)
    return written


def save_one(image, path: Path, params: ImageParameters, *, fix: str, on_existing: OnExisting) -> Path:
    """Write one PNG at ``path`` (or, with ``NUMBER``, the first free numbered name); return where it went."""
    for number in range(1, MAX_NUMBERED):
        candidate = path if number == 1 else path.with_name(f"{path.stem}-{number}{path.suffix}")
        try:
            return save_png(image, candidate, params, replace=on_existing is OnExisting.REPLACE)
        except FileExistsError as exc:
            if candidate.is_dir() and on_existing is not OnExisting.NUMBER:
                raise OutputError(f"{candidate} is a folder, not an image file; {fix}.") from exc
            if on_existing is OnExisting.FAIL:
                raise OutputError(f"{candidate} already exists; pass --overwrite to replace it or {fix}.") from exc
        except IsADirectoryError as exc:
            raise OutputError(f"{candidate} is a folder, not an image file; {fix}.") from exc
        except OSError as exc:
            hint = f"free some disk space or {fix}" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else fix
            raise OutputError(f"Could not save {candidate.name} in {candidate.parent} ({exc.strerror or exc}); "
                              f"{hint}.") from exc
    raise OutputError(f"{path.parent} already holds {MAX_NUMBERED} images named {path.stem}-N; {fix}.")


@dataclass(frozen=True)
class SavedImage:
    path: Path
    params: ImageParameters
    entry: HistoryEntry | None = None  # its history row, when a history is kept


class ImageWriter:
    """Writes a result's PNGs and then their history rows: owned and called by the app's engine thread.

    Names are ``<time>-<seed>-<tag>-<index>.png`` in the folder given per call; a name that is taken gets
    a number (never replaced).  Each history row is added only after its PNG is on disk.  An image-to-image
    result's starting image (fitted to the request's size: the canvas of a sketch) is kept once per result in
    ``starts`` (an app folder), and its rows name it, so a picture can be reopened with its sketch.
    """

    def __init__(self, history: History | None = None, fix: str = "choose another output folder",
                 starts: Path | None = None):
        self._history = history
        self._fix = fix
        self._starts = starts

    def write(self, result: GenerationResult, folder: Path, *, tag: str = "", model_hash: str | None = None,
              model: str | None = None, origin: str = "app") -> list[SavedImage]:
        """``origin``: who asked ("app" or "api"), recorded in each history row."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        suffix = f"-{tag}" if tag else ""
        prepare_folder(folder, self._fix)
        saved: list[SavedImage] = []
        start: list[Path] = []  # the starting image's copy, written with the first image

        def record(path: Path, params: ImageParameters, seed: int) -> None:
            entry = None
            if self._history is not None:
                req = result.request
                if req.is_img2img and self._starts is not None and not start:
                    start.append(self._keep_start(result, self._starts / f"{stamp}-{seed}{suffix}-start.png", params))
                entry = self._history.add(
                    path=path, prompt=params.prompt, negative_prompt=params.negative_prompt, steps=params.steps,
                    guidance_scale=params.guidance_scale, seed=seed, width=params.width, height=params.height,
                    model=result.model_name, backend=result.backend, timings=result.timings.summary(),
                    strength=req.strength, init_image=start[0] if start else None,
                    loras=tuple((lora.name, lora.weight) for lora in req.loras), origin=origin)
            saved.append(SavedImage(path, params, entry))

        save_images(result, lambda index, seed: folder / f"{stamp}-{seed}{suffix}-{index}.png", model=model,
                    model_hash=model_hash, fix=self._fix, on_saved=record)
        return saved

    def _keep_start(self, result: GenerationResult, path: Path, params: ImageParameters) -> Path:
        from .core.init_image import load_init_image

        req = result.request
        prepare_folder(path.parent, "free some disk space")
        image = load_init_image(req.init_image, req.width, req.height)
        kept = save_one(image, path, params, fix="free some disk space", on_existing=OnExisting.NUMBER)
        if req.inpaint is not None and req.inpaint.mask is not None:  # the mask too, beside it (history.mask_path)
            from .core.mask import load_mask
            from .history import mask_path

            load_mask(req.inpaint.mask, image.width, image.height).save(mask_path(kept))
        return kept
