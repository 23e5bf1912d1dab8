"""What is installed, how big it is, whether it is whole, and deleting it.  Never touches the network.

Three places hold models:
- catalog models pulled from the Hub live in the Hugging Face cache (shared with other tools);
  sizes and deletion come from huggingface_hub's cache API (``scan_cache_dir``,
  ``delete_revisions``), so blobs shared between revisions are handled as huggingface_hub does;
- imported models: diffusers folders under ``<app data>/models/<name>/``;
- converted Core ML models: folders with a ``manifest.json`` under ``<app data>/coreml/<name>/``.
The built-in demo model ships inside the app (``resources/models/lcm-demo``).

Status: ``complete``, ``incomplete`` (an interrupted pull or a missing component; pull again),
``corrupt`` (a file whose size or header is wrong; delete and pull again).  Listing checks sizes
and safetensors headers, never hashes gigabytes: full hashing happens when a file is pulled.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import uuid
from functools import cached_property
from pathlib import Path

from ..core.errors import LcmError, ModelCorruptError, ModelFormatError, ModelIncompleteError, ModelNotFoundError
from ..core.model_folder import check_safetensors, inspect_model_folder
from ..core.paths import AppPaths, builtin_model_path
from .catalog import Catalog, CatalogEntry, load_catalog
from .disk import format_size
from .download import hub_cache_dir, read_receipt
from .installed import COMPLETE, CORRUPT, INCOMPLETE, InstalledModel, InstallState, ModelRow, Source

IMPORTED_DIR, COREML_DIR, VIEWS_DIR = "models", "coreml", "views"


class ModelStore:
    """What is installed, scanned once per operation (a listing, a resolution, a delete) and then reused.

    Scanning the Hugging Face cache and checking every model folder reads every safetensors header, so
    a store object is made for one operation and asked everything that operation needs.
    """

    def __init__(self, catalog: Catalog | None = None, paths: AppPaths | None = None, cache_dir: Path | None = None):
        self.catalog = catalog or load_catalog()
        self.paths = paths or AppPaths.default()
        self.cache_dir = cache_dir or hub_cache_dir()

    @cached_property
    def installed(self) -> list[InstalledModel]:
        """Everything on disk: built-in, pulled (catalog order), foreign cache repos, imported, Core ML."""
        catalog, found = self.catalog, []
        builtin = next((e for e in catalog if e.source == "builtin"), None)
        if builtin is not None and builtin_model_path().is_dir():
            status, detail = _folder_status(builtin_model_path())
            found.append(InstalledModel(builtin.id, builtin.kind, Source.BUILTIN, builtin_model_path(),
                                        _tree_size(builtin_model_path()), status, detail))
        hub = _hub_models(catalog, self.cache_dir)
        found += sorted(hub, key=lambda m: _catalog_order(catalog, m))
        found += _imported_models(self.paths.data / IMPORTED_DIR)
        found += _coreml_models(self.paths.data / COREML_DIR)
        return found

    def find(self, name: str) -> InstalledModel | None:
        return next((m for m in self.installed if m.name == name and m.source is not Source.CACHE), None)

    def rows(self) -> list[ModelRow]:
        """The `models list` table: every catalog entry, then imported and converted models."""
        by_name = {m.name: m for m in self.installed if m.source in (Source.BUILTIN, Source.HUB)}
        rows = []
        for entry in self.catalog:
            model = by_name.get(entry.id)
            if model is None:
                rows.append(ModelRow(entry.id, entry.name, entry.kind, None, entry.size_bytes, None, approx=True,
                                     non_commercial=entry.non_commercial))
                continue
            size, display, needs = model.size_bytes, entry.name, None
            if entry.requires and model.status is COMPLETE:
                base = by_name.get(entry.requires)
                display = f"{entry.name} + {self.catalog.get(entry.requires).name}"
                if base is None or base.status is not COMPLETE:
                    needs = entry.requires
                else:
                    size += base.size_bytes
            rows.append(ModelRow(entry.id, display, entry.kind, model.status, size, model.path, needs=needs,
                                 non_commercial=entry.non_commercial))
        for model in self.installed:
            if model.source in (Source.IMPORTED, Source.COREML):
                rows.append(ModelRow(model.name, model.name, model.kind, model.status, model.size_bytes, model.path))
        return rows

    def delete(self, name: str) -> int:
        """Delete an installed model (a catalog id or an imported/converted name); return the bytes freed."""
        self.__dict__.pop("installed", None)  # what is installed changes now
        entry = self.catalog.find(name)
        if entry is not None and entry.source == "builtin":
            raise ModelNotFoundError(f"{name} is the built-in model; it ships with LCM Desktop and cannot be deleted.")
        shutil.rmtree(self.paths.data / VIEWS_DIR, ignore_errors=True)  # symlink views; rebuilt on demand
        if entry is not None:
            return _delete_hub_repo(entry, self.cache_dir)
        for folder in (self.paths.data / IMPORTED_DIR / name, self.paths.data / COREML_DIR / name):
            if _safe_name(name) and folder.is_dir():
                size = _tree_size(folder)
                trash = folder.parent / f".trash-{uuid.uuid4().hex[:8]}"
                os.replace(folder, trash)  # the model disappears at once; the bytes go next
                shutil.rmtree(trash, ignore_errors=True)
                return size
        raise ModelNotFoundError(
            f"No installed model named {name!r}; `lcm-desktop models list` shows what is installed."
        )

    def disk_usage(self) -> list[InstalledModel]:
        """Installed models including other repos in the shared Hugging Face cache, largest first."""
        return sorted(self.installed, key=lambda m: -m.size_bytes)


# One-operation shorthands (each makes its own store).
def installed_models(catalog: Catalog | None = None, paths: AppPaths | None = None,
                     cache_dir: Path | None = None) -> list[InstalledModel]:
    return ModelStore(catalog, paths, cache_dir).installed


def model_rows(catalog: Catalog | None = None, paths: AppPaths | None = None,
               cache_dir: Path | None = None) -> list[ModelRow]:
    return ModelStore(catalog, paths, cache_dir).rows()


def find_installed(name: str, catalog: Catalog | None = None, paths: AppPaths | None = None,
                   cache_dir: Path | None = None) -> InstalledModel | None:
    return ModelStore(catalog, paths, cache_dir).find(name)


def delete_model(name: str, catalog: Catalog | None = None, paths: AppPaths | None = None,
                 cache_dir: Path | None = None) -> int:
    return ModelStore(catalog, paths, cache_dir).delete(name)


def disk_usage(catalog: Catalog | None = None, paths: AppPaths | None = None,
               cache_dir: Path | None = None) -> list[InstalledModel]:
    return ModelStore(catalog, paths, cache_dir).disk_usage()


# -- the Hugging Face cache -------------------------------------------------------------------
def _scan(cache: Path):
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    if not cache.is_dir():
        return None
    try:
        return scan_cache_dir(cache)
    except CacheNotFound:
        return None


def _hub_models(catalog: Catalog, cache: Path) -> list[InstalledModel]:
    info = _scan(cache)
    if info is None:
        return []
    partial_sizes: dict[Path, int] = {}
    for item in info.incomplete_files:
        repo_path = item.file_path.parent.parent
        partial_sizes[repo_path] = partial_sizes.get(repo_path, 0) + item.size_on_disk
    models = []
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        partial = partial_sizes.get(repo.repo_path, 0)
        size = repo.size_on_disk + partial
        for entry in catalog.all_by_repo(repo.repo_id) or [None]:  # Hyper-SD: several entries, one repo
            models.append(_hub_model(entry, repo, size, partial))
    for warning in info.warnings:  # a repo folder huggingface_hub cannot read (e.g. no snapshots/)
        repo_path = _warned_repo(warning, cache)
        entry = catalog.by_repo(_repo_id_of(repo_path)) if repo_path else None
        if entry is not None:
            models.append(InstalledModel(entry.id, entry.kind, Source.HUB, None, _tree_size(repo_path), CORRUPT,
                                         f"the cached copy is damaged ({warning}); run `lcm-desktop models rm "
                                         f"{entry.id}` and pull it again.", entry.repo_id))
    return models


def _hub_model(entry: CatalogEntry | None, repo, size: int, partial: int) -> InstalledModel:
    revision = _current_revision(repo, entry)
    if entry is None:
        return InstalledModel(repo.repo_id, "other", Source.CACHE, revision.snapshot_path if revision else None,
                              size, COMPLETE, repo_id=repo.repo_id)
    status, detail = _hub_status(entry, repo, revision, partial)
    return InstalledModel(entry.id, entry.kind, Source.HUB, revision.snapshot_path if revision else None,
                          size, status, detail, repo.repo_id, revision.commit_hash if revision else None)


def entry_weights(entry: CatalogEntry, folder: Path) -> list[Path]:
    """The safetensors files of ``folder`` that ``entry`` fetches (a repo may hold several entries' files)."""
    return [f for f in sorted(folder.glob("*.safetensors"))
            if any(fnmatch.fnmatch(f.name, p) for p in entry.allow_patterns) or not entry.allow_patterns]


def _current_revision(repo, entry: CatalogEntry | None):
    """The revision the catalog's ref points at, else the newest one."""
    revisions = sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True)
    if entry is not None and entry.revision:
        for rev in revisions:
            if entry.revision in rev.refs or rev.commit_hash == entry.revision:
                return rev
    return revisions[0] if revisions else None


def _hub_status(entry: CatalogEntry, repo, revision, partial: int) -> tuple[InstallState, str]:
    pull_again = f"run `lcm-desktop models pull {entry.id}` to finish it"
    if revision is None:
        return INCOMPLETE, f"nothing downloaded yet; {pull_again}."
    receipt = read_receipt(repo.repo_path, revision.commit_hash)
    snapshot = revision.snapshot_path
    if receipt is not None:
        for rel, record in receipt.get("files", {}).items():
            file = snapshot / rel
            if not file.exists():
                return INCOMPLETE, f"{rel} is missing; {pull_again}."
            if file.stat().st_size != record.get("size"):
                return CORRUPT, f"{rel} has the wrong size; run `lcm-desktop models rm {entry.id}` and pull it again."
    if partial or (receipt is not None and not receipt.get("complete", False)):
        kept = f" ({format_size(partial)} of a file kept)" if partial else ""
        return INCOMPLETE, f"the download was interrupted{kept}; {pull_again}."
    status, detail = _layout_status(entry, snapshot)
    if status == INCOMPLETE:
        detail = f"{detail.rstrip('.')}; {pull_again}."
    return status, detail


def _layout_status(entry: CatalogEntry, folder: Path) -> tuple[InstallState, str]:
    if entry.layout == "diffusers":
        return _folder_status(folder)
    needed = ["config.json"] if entry.layout in ("unet", "decoder") else []
    missing = [n for n in needed if not (folder / n).is_file()]
    weights = entry_weights(entry, folder)
    if missing or not weights:
        return INCOMPLETE, f"{', '.join(missing) or 'the .safetensors weights'} missing"
    try:
        for file in weights:
            check_safetensors(file)
    except ModelCorruptError as exc:
        return CORRUPT, exc.user_message
    return COMPLETE, ""


def _delete_hub_repo(entry: CatalogEntry, cache: Path) -> int:
    info = _scan(cache)
    repo = (
        next((r for r in info.repos if r.repo_id == entry.repo_id and r.repo_type == "model"), None) if info else None
    )
    if repo is None:
        from .download import repo_storage

        storage = repo_storage(entry.repo_id or "", cache)
        if not storage.is_dir():
            raise ModelNotFoundError(f"{entry.id} is not installed; nothing to delete.")
        size = _tree_size(storage)  # unreadable by scan_cache_dir (damaged): remove the folder itself
        shutil.rmtree(storage)
        return size
    partial = sum(f.size_on_disk for f in info.incomplete_files if f.file_path.parent.parent == repo.repo_path)
    strategy = info.delete_revisions(*[r.commit_hash for r in repo.revisions])
    strategy.execute()
    return strategy.expected_freed_size + partial


# -- imported and converted folders -----------------------------------------------------------
def _imported_models(root: Path) -> list[InstalledModel]:
    models = []
    for folder in _subfolders(root):
        status, detail = _folder_status(folder)
        models.append(InstalledModel(folder.name, _imported_kind(folder), Source.IMPORTED, folder,
                                     _tree_size(folder), status, detail))
    return models


def _coreml_models(root: Path) -> list[InstalledModel]:
    from ..core.manifest import MANIFEST_NAME, load_manifest

    models = []
    for folder in _subfolders(root):
        if not (folder / MANIFEST_NAME).is_file():
            continue
        status, detail = COMPLETE, ""
        try:
            load_manifest(folder)
        except ModelIncompleteError as exc:
            status, detail = INCOMPLETE, exc.user_message
        except LcmError as exc:
            status, detail = CORRUPT, exc.user_message
        models.append(InstalledModel(folder.name, "coreml", Source.COREML, folder, _tree_size(folder), status, detail))
    return models


def _folder_status(folder: Path) -> tuple[InstallState, str]:
    try:
        inspect_model_folder(folder)
    except ModelCorruptError as exc:
        return CORRUPT, exc.user_message
    except (ModelFormatError, ModelNotFoundError) as exc:
        return INCOMPLETE, exc.user_message
    return COMPLETE, ""


def _imported_kind(folder: Path) -> str:
    import json

    try:
        config = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "base"
    return "lcm" if config.get("time_cond_proj_dim") else "base"


def _subfolders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _tree_size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (symlinks not followed); for app folders, not the HF cache."""
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _safe_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and not name.startswith(".")


def _catalog_order(catalog: Catalog, model: InstalledModel) -> tuple[int, str]:
    ids = [e.id for e in catalog]
    return (ids.index(model.name) if model.name in ids else len(ids), model.name)


def _warned_repo(warning: Exception, cache: Path) -> Path | None:
    for part in str(warning).replace("(", " ").replace(")", " ").split():
        path = Path(part.rstrip(".:,"))
        if path.parent == cache or cache in path.parents:
            rel = path.relative_to(cache).parts
            return cache / rel[0] if rel else None
    return None


def _repo_id_of(repo_path: Path) -> str:
    return repo_path.name.split("--", 1)[-1].replace("--", "/")
