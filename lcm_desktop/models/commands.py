"""``lcm-desktop models …``: list, pull, rm, import, du; and ``resolve_model`` for ``generate --model``.

Wired into ``cli.py`` with ``add_models_parser(subparsers)`` and ``run_models_command(args)``.
Every failure is one line on stderr and exit code 2; Ctrl-C during a pull keeps what was
downloaded (exit 130) and the next pull resumes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import LcmError, ModelNotFoundError
from ..core.paths import AppPaths
from .catalog import Catalog, load_catalog
from .disk import format_size
from .progress import DownloadCancelled, DownloadProgress

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 2, 130


def add_models_parser(subparsers) -> argparse.ArgumentParser:
    models = subparsers.add_parser("models", help="list, download, import and delete models")
    sub = models.add_subparsers(dest="models_command", metavar="{list,pull,rm,import,du}")
    sub.required = True
    sub.add_parser("list", help="catalog and installed models: name, kind, installed, size, path")
    pull = sub.add_parser("pull", help="download a catalog model (resumes an interrupted download)")
    pull.add_argument("id", help="catalog id (see `models list`)")
    pull.add_argument("--quiet", action="store_true", help="no progress bar")
    rm = sub.add_parser("rm", help="delete a downloaded, imported or converted model")
    rm.add_argument("id", help="catalog id or imported name")
    imp = sub.add_parser("import", help="import a diffusers folder or a single-file .safetensors checkpoint")
    imp.add_argument("path", type=Path, help="model folder or .safetensors file")
    imp.add_argument("--name", help="name to use (default: from the folder or file name)")
    sub.add_parser("du", help="disk space used by each model")
    return models


def run_models_command(args: argparse.Namespace, catalog: Catalog | None = None) -> int:
    try:
        catalog = catalog or load_catalog()
        command = {"list": _list, "pull": _pull, "rm": _rm, "import": _import, "du": _du}[args.models_command]
        return command(args, catalog)
    except DownloadCancelled as exc:
        print(f"cancelled: {exc.user_message}", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        what = f" `lcm-desktop models {args.models_command} {getattr(args, 'id', '')}`".rstrip()
        print(f"cancelled; what was downloaded is kept, run{what} again to resume.", file=sys.stderr)
        return EXIT_CANCELLED
    except LcmError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return EXIT_ERROR


def resolve_model(ref: str, catalog: Catalog | None = None, paths: AppPaths | None = None) -> Path:
    """A diffusers folder for ``ref``: a catalog id (or its repo id), an imported model's name, or a path.

    Never touches the network.  Raises ``ModelNotFoundError`` (not downloaded, unknown name, no
    such path), ``ModelCorruptError`` or ``ModelFormatError`` with a one-line fix.
    """
    from .store import find_installed
    from .views import usable_folder

    catalog = catalog or load_catalog()
    paths = paths or AppPaths.default()
    # Order: catalog id, imported/converted name, existing path, catalog repo id.  A folder that
    # shares a catalog id's name is reached with an explicit path (./taesd).
    entry = catalog.find(ref)
    if entry is not None:
        return usable_folder(entry, catalog, paths)
    if ref and "/" not in ref and "\\" not in ref and not ref.startswith("."):
        model = find_installed(ref, catalog, paths)
        if model is not None and model.path is not None:
            return model.path
    path = Path(ref).expanduser()
    if path.exists():
        return path
    entry = catalog.by_repo(ref)
    if entry is not None:
        return usable_folder(entry, catalog, paths)
    known = [e.id for e in catalog] + [m.name for m in _local_models(catalog, paths)]
    import difflib

    close = difflib.get_close_matches(ref, known, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ModelNotFoundError(
        f"No model {ref!r}: not a catalog id, an imported model or an existing folder; {hint}"
        "`lcm-desktop models list` shows what is available."
    )


# -- subcommands ------------------------------------------------------------------------------
def _list(args, catalog: Catalog) -> int:
    from .store import model_rows

    rows = model_rows(catalog)
    table = [("NAME", "KIND", "INSTALLED", "SIZE", "PATH")]
    for row in rows:
        size = ("~" if row.approx else "") + format_size(row.size_bytes)
        table.append((row.name, row.kind, row.installed, size, str(row.path) if row.path else "-"))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4])
    return EXIT_OK


def _pull(args, catalog: Catalog) -> int:
    from .download import pull

    entry = catalog.get(args.id)
    bar = None if args.quiet else _PullBar(entry.id)
    try:
        snapshot = pull(entry, on_progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    print(snapshot)
    if entry.requires:
        from .store import find_installed

        base = find_installed(entry.requires, catalog)
        if base is None or base.status != "complete":
            print(f"note: {entry.id} needs {entry.requires}; run `lcm-desktop models pull {entry.requires}`.",
                  file=sys.stderr)
    return EXIT_OK


def _rm(args, catalog: Catalog) -> int:
    from .store import delete_model

    freed = delete_model(args.id, catalog)
    print(f"deleted {args.id}, freed {format_size(freed)}")
    return EXIT_OK


def _import(args, catalog: Catalog) -> int:
    from .importer import import_model

    folder = import_model(args.path, name=args.name, catalog=catalog)
    print(f"imported {folder.name}: {folder}")
    return EXIT_OK


def _du(args, catalog: Catalog) -> int:
    from .store import disk_usage

    models = disk_usage(catalog)
    width = max([len(m.name) for m in models] + [4])
    for m in models:
        where = {"cache": "other (shared HF cache)", "hub": "HF cache"}.get(m.source, m.source)
        status = "" if m.status == "complete" else f"  [{m.status}]"
        print(f"{m.name.ljust(width)}  {format_size(m.size_bytes):>9}  {where}{status}")
    print(f"{'total'.ljust(width)}  {format_size(sum(m.size_bytes for m in models)):>9}")
    return EXIT_OK


def _local_models(catalog: Catalog, paths: AppPaths):
    from .store import installed_models

    return [m for m in installed_models(catalog, paths) if m.source in ("imported", "coreml")]


class _PullBar:
    """A byte progress bar on stderr: ``taesd 3/4 files: 45%|████ | 4.5M/10.0M``."""

    def __init__(self, model_id: str):
        self.model_id = model_id
        self._bar = None

    def update(self, progress: DownloadProgress) -> None:
        from tqdm import tqdm

        description = f"{self.model_id} {progress.files_done}/{progress.files_total} files"
        if self._bar is None:
            self._bar = tqdm(total=progress.bytes_total, unit="B", unit_scale=True, file=sys.stderr,
                             mininterval=0.2, initial=progress.bytes_done, desc=description)
        self._bar.set_description(description, refresh=False)
        self._bar.update(progress.bytes_done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
