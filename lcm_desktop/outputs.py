"""Writing a generation's images: one PNG per image with its parameters chunk, atomically (no Qt, no torch).

Shared by the CLI and the app, so an image saved either way carries the same settings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .core.errors import OutputError
from .core.metadata import ImageParameters, save_png
from .core.request import GenerationResult


def image_parameters(result: GenerationResult, seed: int, model: str | None = None,
                     model_hash: str | None = None) -> ImageParameters:
    """The parameters of one image of ``result`` (a negative prompt the model ignored is not recorded)."""
    req = result.request
    return ImageParameters(
        prompt=req.prompt, negative_prompt="" if result.negative_prompt_ignored else req.negative_prompt,
        steps=req.steps, guidance_scale=req.guidance_scale, seed=seed, width=req.width, height=req.height,
        model=model or result.model_name, model_hash=model_hash,
    )


def save_images(result: GenerationResult, path_for: Callable[[int, int], Path], *, model: str | None = None,
                model_hash: str | None = None, fix: str = "choose another output folder",
                on_saved: Callable[[Path, ImageParameters, int], None] | None = None) -> list[Path]:
    """Write every image; ``path_for(index, seed)`` names it; ``on_saved`` runs after each file is on disk."""
    written = []
    for index, (image, seed) in enumerate(zip(result.images, result.seeds)):
        path = path_for(index, seed)
        params = image_parameters(result, seed, model, model_hash)
        try:
            save_png(image, path, params)
        except OSError as exc:
            raise OutputError(f"Could not save {path.name} in {path.parent} ({exc.strerror or exc}); "
                              f"free some disk space or {fix}.") from exc
        if on_saved is not None:
            on_saved(path, params, seed)
        written.append(path)
    return written
