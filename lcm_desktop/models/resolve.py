"""Which model does ``--model X`` mean?  One answer for ``generate``, ``gui``, ``doctor`` and the app.

A catalog id (or its Hub repo id), the name of an imported or converted model, or a folder path;
never the network.  Diffusers folders and Core ML folders alike: what the folder *is* is
``core.model_info.describe_model``'s question, asked by the caller.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..core.errors import ModelNotFoundError
from ..core.paths import AppPaths
from .catalog import Catalog
from .installed import Source
from .store import ModelStore
from .views import usable_folder


def resolve_model(ref: str, catalog: Catalog | None = None, paths: AppPaths | None = None) -> Path:
    """The model folder ``ref`` names: a catalog id (or its repo id), an imported or converted model's name,
    or a path.

    Never touches the network.  Raises ``ModelNotFoundError`` (not downloaded, unknown name, no
    such path), ``ModelCorruptError`` or ``ModelFormatError`` with a one-line fix.
    """
    store = ModelStore(catalog, paths)  # one scan for the whole resolution
    catalog = store.catalog
    # Order: catalog id, imported/converted name, existing path, catalog repo id.  A folder that
    # shares a catalog id's name is reached with an explicit path (./taesd).
    entry = catalog.find(ref)
    if entry is not None:
        return usable_folder(entry, store=store)
    if ref and "/" not in ref and "\\" not in ref and not ref.startswith("."):
        model = store.find(ref)
        if model is not None and model.path is not None:
            return model.path
    path = Path(ref).expanduser()
    if path.exists():
        return path
    entry = catalog.by_repo(ref)
    if entry is not None:
        return usable_folder(entry, store=store)
    local = [m.name for m in store.installed if m.source in (Source.IMPORTED, Source.COREML)]
    close = difflib.get_close_matches(ref, [e.id for e in catalog] + local, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ModelNotFoundError(
        f"No model {ref!r}: not a catalog id, an imported model or an existing folder; {hint}"
        "`lcm-desktop models list` shows what is available."
    )
