"""``lcm-desktop models …``: list, styles, pull, rm, import, du — the parsers and the printing.

What models are and where they live is the ``models`` package's; this module only reads the
command line and prints.  Ctrl-C during a pull keeps what was downloaded (exit 130) and the next
pull resumes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.text import printable
from ..models.catalog import Catalog, load_catalog
from ..models.disk import format_size
from ..models.progress import DownloadProgress

EXIT_OK = 0


def cancelled_message(args: argparse.Namespace) -> str:
    what = f" `lcm-desktop models {args.models_command} {getattr(args, 'id', '')}`".rstrip()
    return f"cancelled; what was downloaded is kept, run{what} again to resume."


def add_parser(subparsers) -> argparse.ArgumentParser:
    models = subparsers.add_parser("models", help="list, download, import and delete models")
    sub = models.add_subparsers(dest="models_command", metavar="{list,styles,pull,rm,import,du}")
    sub.required = True
    sub.add_parser("list", help="catalog and installed models (name, kind, installed, size, path), then styles")
    sub.add_parser("styles", help="installed style LoRAs: name, base family, size, trigger words")
    pull = sub.add_parser("pull", help="download a catalog model (resumes an interrupted download)")
    pull.add_argument("id", help="catalog id (see `models list`)")
    pull.add_argument("--quiet", action="store_true", help="no progress bar")
    rm = sub.add_parser("rm", help="delete a downloaded, imported or converted model, or a style")
    rm.add_argument("id", help="catalog id, imported name or style name")
    rm.add_argument("--style", action="store_true", help="ID is a style (when a model has the same name)")
    imp = sub.add_parser("import", help="import a diffusers folder, a single-file .safetensors checkpoint or a "
                         "style LoRA (.safetensors)")
    imp.add_argument("path", type=Path, help="model folder, checkpoint or LoRA .safetensors file")
    imp.add_argument("--name", help="name to use (default: from the folder or file name)")
    sub.add_parser("du", help="disk space used by each model")
    return models


def run(args: argparse.Namespace, catalog: Catalog | None = None) -> int:
    catalog = catalog or load_catalog()
    command = {"list": _list, "styles": _styles, "pull": _pull, "rm": _rm, "import": _import,
               "du": _du}[args.models_command]
    return command(args, catalog)


# -- subcommands ------------------------------------------------------------------------------
def _list(args, catalog: Catalog) -> int:
    from ..models.store import model_rows

    rows = model_rows(catalog)
    table = [("NAME", "KIND", "INSTALLED", "SIZE", "PATH")]
    for row in rows:
        size = ("~" if row.approx else "") + format_size(row.size_bytes)
        kind = f"{row.kind} (non-commercial)" if row.non_commercial else row.kind
        table.append((printable(row.name), kind, row.installed, size, printable(row.path) if row.path else "-"))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4])
    from ..models.styles import StyleStore

    if StyleStore().styles():
        print()
        _styles(args, catalog)
    return EXIT_OK


def _styles(args, catalog: Catalog) -> int:
    from ..models.styles import StyleStore

    styles = StyleStore().styles()
    if not styles:
        print("no styles installed; add one with `lcm-desktop models import FILE.safetensors`")
        return EXIT_OK
    table = [("STYLE", "BASE", "SIZE", "TRIGGER WORDS")]
    for style in styles:
        info = style.info
        if info is None:
            table.append((printable(style.name), "damaged", format_size(style.size_bytes), printable(style.problem)))
            continue
        parts = "" if info.touches_text_encoder else " (UNet only)"
        table.append((printable(style.name) + (" (built in)" if style.builtin else ""), info.family_label + parts,
                      format_size(info.size_bytes),
                      printable(", ".join(info.trigger_words)) or "-"))  # words from a stranger's file
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3])
    return EXIT_OK


def _pull(args, catalog: Catalog) -> int:
    from ..models.download import pull

    entry = catalog.get(args.id)
    bar = None if args.quiet else _PullBar(entry.id)
    try:
        snapshot = pull(entry, on_progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    print(snapshot)
    if entry.requires:
        from ..models.installed import InstallState
        from ..models.store import find_installed

        base = find_installed(entry.requires, catalog)
        if base is None or base.status is not InstallState.COMPLETE:
            print(f"note: {entry.id} needs {entry.requires}; run `lcm-desktop models pull {entry.requires}`.",
                  file=sys.stderr)
    return EXIT_OK


def _rm(args, catalog: Catalog) -> int:
    from ..core.errors import ModelNotFoundError
    from ..models.store import delete_model
    from ..models.styles import StyleStore

    styles = StyleStore()
    if args.style:
        freed = styles.delete(args.id)
    else:
        try:
            freed = delete_model(args.id, catalog)
        except ModelNotFoundError:
            if not styles.has(args.id):
                raise
            freed = styles.delete(args.id)
    print(f"deleted {args.id}, freed {format_size(freed)}")
    return EXIT_OK


def _import(args, catalog: Catalog) -> int:
    from ..models.importer import import_model
    from ..models.styles import StyleStore, is_lora_file

    if is_lora_file(args.path):
        style = StyleStore().import_file(args.path, name=args.name)
        info = style.info
        words = f"; trigger words: {', '.join(info.trigger_words)}" if info and info.trigger_words else ""
        print(f"imported style {printable(style.name)} ({info.family_label if info else '?'}, "
              f"{format_size(style.size_bytes)}){words}: {style.path}")
        return EXIT_OK
    folder = import_model(args.path, name=args.name, catalog=catalog)
    print(printable(f"imported {folder.name}: {folder}"))
    return EXIT_OK


def _du(args, catalog: Catalog) -> int:
    from ..models.installed import InstallState
    from ..models.store import disk_usage

    models = disk_usage(catalog)
    width = max([len(m.name) for m in models] + [4])
    for m in models:
        where = {"cache": "other (shared HF cache)", "hub": "HF cache"}.get(m.source, m.source)
        status = "" if m.status is InstallState.COMPLETE else f"  [{m.status}]"
        print(f"{printable(m.name).ljust(width)}  {format_size(m.size_bytes):>9}  {where}{status}")
    print(f"{'total'.ljust(width)}  {format_size(sum(m.size_bytes for m in models)):>9}")
    return EXIT_OK


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
