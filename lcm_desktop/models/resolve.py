"""Which model does ``--model X`` mean?  One answer for ``generate``, ``gui``, ``doctor`` and the app.

A catalog id (or its Hub repo id), the name of an imported or converted model, or a folder path;
never the network.  Diffusers folders and Core ML folders alike: what the folder *is* is
``core.model_info.describe_model``'s question, asked by the caller.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..core.control_folder import is_control_folder
from ..core.errors import ModelNotFoundError
from ..core.paths import AppPaths, resource_path
from .catalog import Catalog
from .installed import Source
from .store import IMPORTED_DIR, ModelStore
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


CONTROL_KINDS = ("controlnet", "t2i-adapter")


def resolve_control(ref: str | Path, catalog: Catalog | None = None, paths: AppPaths | None = None) -> Path:
    """The control model folder ``ref`` names: a folder (a ``Path``), a built-in control (``resources/models``), a
    catalog control's id or repo id (pulled), an imported control's name, or an existing path.  Never the network.

    Whether the folder really is a control model, and fits the base, is ``core.control_folder``'s question, asked
    by the engine when it loads it."""
    if isinstance(ref, Path):
        return ref
    if ref and "/" not in ref and "\\" not in ref and not ref.startswith("."):
        builtin = resource_path("models", ref)
        if builtin.is_dir() and is_control_folder(builtin):
            return builtin
    store = ModelStore(catalog, paths)
    entry = store.catalog.find(ref) or store.catalog.by_repo(ref)
    if entry is not None and entry.kind in CONTROL_KINDS:
        return pulled_control_folder(entry, store)
    if ref and "/" not in ref and "\\" not in ref and not ref.startswith("."):
        imported = store.paths.data / IMPORTED_DIR / ref
        if imported.is_dir() and is_control_folder(imported):
            return imported
    path = Path(ref).expanduser()
    if path.exists():
        return path
    controls = [e.id for e in store.catalog if e.kind in CONTROL_KINDS]
    close = difflib.get_close_matches(ref, controls, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ModelNotFoundError(
        f"No control model {ref!r}: not a catalog control model, an imported one or an existing folder; {hint}"
        "`lcm-desktop models list` shows the control models."
    )


def pulled_control_folder(entry, store: ModelStore) -> Path:
    """The snapshot folder of a pulled catalog control model (one ``config.json`` + safetensors)."""
    model = store.find(entry.id)
    if model is None or model.path is None:
        raise ModelNotFoundError(f"{entry.id} is not downloaded yet; run `lcm-desktop models pull {entry.id}` "
                                 f"(about {entry.size_mb} MB).")
    return Path(model.path)
