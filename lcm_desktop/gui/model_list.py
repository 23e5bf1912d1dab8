"""The models the window offers: installed and usable ones, built-in demo first (no widgets here)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import LcmError
from ..core.paths import AppPaths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UsableModel:
    label: str
    folder: Path
    tiny_decoder: Path | None = None  # an installed AutoencoderTiny that fits (previews)


def usable_models(paths: AppPaths, builtin: Path) -> list[UsableModel]:
    """Complete, loadable models: pulled catalog models (LoRAs with their base), imported and Core ML ones."""
    from ..models.installed import InstallState, Source
    from ..models.store import ModelStore
    from ..models.views import usable_folder

    found: list[UsableModel] = []
    try:
        store = ModelStore(paths=paths)  # one scan of the caches for the whole list
        catalog = store.catalog
        for model in store.installed:
            # bases alone make poor 4-step images; tiny decoders are not models to pick
            if (
                model.status is not InstallState.COMPLETE
                or model.path is None
                or model.kind in ("tiny-decoder", "base")
            ):
                continue
            if model.source in (Source.IMPORTED, Source.COREML):
                suffix = "  (Core ML)" if model.source is Source.COREML else ""
                found.append(UsableModel(model.name + suffix, model.path))
                continue
            if model.source not in (Source.BUILTIN, Source.HUB):
                continue
            entry = catalog.get(model.name)
            try:
                folder = usable_folder(entry, store=store)
            except LcmError:
                continue  # e.g. an LCM-LoRA whose base is not complete yet
            tiny = None
            if entry.tiny_decoder and catalog.find(entry.tiny_decoder):
                try:
                    tiny = usable_folder(catalog.get(entry.tiny_decoder), store=store)
                except LcmError:
                    pass  # not downloaded: previews use the VAE at half size
            found.append(UsableModel(entry.name, folder, tiny))
    except LcmError as exc:
        log.warning("model list unavailable: %s", exc)
    if builtin.is_dir() and all(m.folder != builtin for m in found):
        found.insert(0, UsableModel("Built-in demo", builtin))
    return found
