"""A folder of pictures to learn from: each fitted to the training size, each with its caption.

Captions: a sidecar ``<picture>.txt`` beside the picture (the kohya convention) wins; otherwise the
``template`` with ``{}`` replaced by the trigger word ("a {} photo" + "pink" → "a pink photo"), or the trigger
word alone.  Pictures are fitted exactly as image-to-image fits a starting picture (``core.init_image``: EXIF,
colour, cover + centre crop).  A file that is not a readable picture, or is smaller than half the training
size on a side, is skipped and counted — never a crash; a folder with nothing usable is one clear error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import InvalidRequestError, LcmError, ModelCorruptError, ModelFormatError, TrainingError
from ..core.init_image import check_image_file, load_init_image
from ..core.model_files import confined_file, read_confined

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MAX_CAPTION_CHARS = 1000


@dataclass(frozen=True)
class TrainingSet:
    """The usable pictures (RGB PIL images of ``size`` × ``size``) and their captions, in file-name order."""

    folder: Path
    size: int
    images: tuple[Any, ...]
    captions: tuple[str, ...]
    skipped_unreadable: int = 0
    skipped_tiny: int = 0

    def __len__(self) -> int:
        return len(self.images)

    @property
    def summary(self) -> str:
        skipped = [f"{n} {what}" for n, what in ((self.skipped_unreadable, "unreadable"),
                                                   (self.skipped_tiny, "too small")) if n]
        note = f" (skipped: {', '.join(skipped)})" if skipped else ""
        return f"{len(self)} pictures from {self.folder}{note}"


def caption_for(picture: Path, template: str | None, trigger: str | None) -> str | None:
    """The picture's caption: its sidecar ``.txt``, else the template with the trigger, else the trigger."""
    sidecar = picture.with_suffix(".txt")
    if os.path.lexists(sidecar):
        try:  # inside the picture folder, a regular file, at most 4 bytes per kept character read
            data = read_confined(picture.parent, sidecar, 4 * MAX_CAPTION_CHARS, truncate=True)
        except LcmError as exc:  # a link to a system file, a FIFO: never read into a published style
            raise TrainingError(f"The caption {sidecar.name} cannot be used ({exc.user_message.rstrip('.')}).") \
                from exc
        text = data.decode("utf-8", errors="replace")[:MAX_CAPTION_CHARS]
        text = " ".join(text.split())
        if text:
            return text
    if template:
        return template.replace("{}", trigger or "").strip()
    return trigger or None


def load_training_set(folder: Path | str, size: int, *, template: str | None = None,
                      trigger: str | None = None) -> TrainingSet:
    """Read every picture in ``folder`` (not its subfolders) for training at ``size`` × ``size``."""
    folder = Path(folder).expanduser()
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    except OSError as exc:
        raise TrainingError(f"Cannot read the picture folder {folder} ({exc.strerror or exc}); choose a folder "
                            "of pictures.") from exc
    if not files:
        raise TrainingError(f"No pictures in {folder}; put PNG or JPEG files there (captions in .txt files beside "
                            "them, or pass a trigger word).")
    images, captions, unreadable, tiny = [], [], 0, 0
    for path in files:
        caption = caption_for(path, template, trigger)
        if caption is None:
            raise TrainingError(f"No caption for {path.name}: add {path.with_suffix('.txt').name} beside it, or "
                                "pass a trigger word (--trigger) or a caption template (--caption).")
        try:
            real = confined_file(folder, path)  # a link out of the folder, a FIFO or a device counts as unreadable
            width, height = check_image_file(real)
            if min(width, height) * 2 < size:
                tiny += 1
                continue
            images.append(load_init_image(real, size, size))
        except (InvalidRequestError, ModelFormatError, ModelCorruptError):
            unreadable += 1
            continue
        captions.append(caption)
    if not images:
        raise TrainingError(f"None of the {len(files)} pictures in {folder} is usable ({unreadable} unreadable, "
                            f"{tiny} smaller than {size // 2} pixels); add pictures of at least {size}×{size}.")
    return TrainingSet(folder, size, tuple(images), tuple(captions), unreadable, tiny)
