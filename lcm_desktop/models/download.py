"""Downloads from the Hugging Face Hub into its standard cache: progress, cancel, resume, verification.

    snapshot = pull(catalog.get("taesd"), on_progress=print, cancel=threading.Event())

Everything goes through huggingface_hub (``HfApi.model_info`` for the file list with sizes and
sha256, ``get_hf_file_metadata`` + ``http_get`` for the bytes, ``hf_hub_download`` to link a
verified blob into the snapshot).  ``hf_hub_download`` alone is not enough: huggingface_hub 2.4
downloads into a process-unique temporary file that it deletes on any failure (its PR #4228),
so an interrupted file would start again from zero, and it never checks the contents.  Here
each file streams into ``blobs/<sha>.incomplete`` (the cache's conventional partial name, which
``scan_cache_dir`` reports as an incomplete download), resumes with a ``Range`` request, is
verified against the Hub's size and sha256 (git sha1 for small non-LFS files), and only then
becomes ``blobs/<sha>``.  A damaged file is deleted and reported; it never becomes visible.

Each verified file is recorded in a receipt (``<repo>/.lcm-desktop/<commit>.json``, inside the
cached repo so that deleting the repo removes it too; ``complete`` once every file is in), so a
resumed pull does not hash finished files again and the store can tell complete from interrupted.

Cancel: a ``threading.Event``, checked between files and at every progress update
(huggingface_hub reads ``constants.DOWNLOAD_CHUNK_SIZE`` = 10 MB at a time), so a cancel takes
effect within one chunk.  On a connection that has stalled without closing, huggingface_hub
waits out its read timeout and retries (up to 5 times) before control comes back, so a cancel
then waits for that.  Ctrl-C in a terminal interrupts at once; the partial file is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..core.atomic import publish_file
from ..core.errors import DownloadError
from .catalog import CatalogEntry
from .disk import DiskUsage, file_size, format_size, free_space
from .hub_errors import hub_errors
from .progress import DownloadCancelled, DownloadProgress, ProgressTracker

RECEIPT_DIR = ".lcm-desktop"
PARTIAL_SUFFIX = ".incomplete"


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None  # LFS files
    git_sha1: str | None  # every file (the only digest the Hub gives for small, non-LFS files)

    @property
    def blob_name(self) -> str:
        """The name huggingface_hub gives the blob: the ETag, i.e. sha256 for LFS files, else the git oid."""
        return self.sha256 or self.git_sha1 or ""


@dataclass(frozen=True)
class DownloadPlan:
    repo_id: str
    revision: str
    commit: str
    files: tuple[RemoteFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


# -- where things live -----------------------------------------------------------------------
def hub_cache_dir() -> Path:
    """The Hugging Face cache, honouring ``HF_HUB_CACHE``/``HF_HOME`` as set now (not at import)."""
    env = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if env:
        return Path(os.path.expandvars(env)).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(os.path.expandvars(home)).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def repo_storage(repo_id: str, cache_dir: Path | None = None) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return (cache_dir or hub_cache_dir()) / repo_folder_name(repo_id=repo_id, repo_type="model")


def receipt_path(storage: Path, commit: str) -> Path:
    return storage / RECEIPT_DIR / f"{commit}.json"


def read_receipt(storage: Path, commit: str) -> dict | None:
    try:
        return json.loads(receipt_path(storage, commit).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# -- the plan ---------------------------------------------------------------------------------
def fetch_plan(
    repo_id: str, revision: str, allow_patterns: tuple[str, ...] | list[str], *,
    endpoint: str | None = None, token: str | bool | None = None,
) -> DownloadPlan:
    """Ask the Hub which files match, with their sizes and digests (one ``model_info`` call)."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    with hub_errors(repo_id, revision):
        info = HfApi(endpoint=_endpoint(endpoint), token=token).model_info(
            repo_id, revision=revision, files_metadata=True
        )
    siblings = list(filter_repo_objects(info.siblings or [], allow_patterns=list(allow_patterns),
                                        key=lambda s: s.rfilename))
    if not siblings or not info.sha:
        raise DownloadError(
            f"{repo_id}@{revision} has no files matching {list(allow_patterns)}; the catalog entry needs updating."
        )
    files = tuple(
        RemoteFile(s.rfilename, int(s.lfs.size if s.lfs else s.size or 0), s.lfs.sha256 if s.lfs else None, s.blob_id)
        for s in sorted(siblings, key=lambda s: s.rfilename)
    )
    if any(f.blob_name == "" for f in files):
        raise DownloadError(f"The Hub gave no checksum for some files of {repo_id}; they cannot be verified.")
    return DownloadPlan(repo_id, revision, info.sha, files)


# -- the pull ---------------------------------------------------------------------------------
def pull(
    entry: CatalogEntry, *,
    on_progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
    disk_usage: DiskUsage = shutil.disk_usage,
    cache_dir: Path | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> Path:
    """Download (or finish downloading) a catalog model; return its snapshot folder."""
    if not entry.downloadable or not entry.repo_id or not entry.revision:
        raise DownloadError(f"{entry.id} ships with LCM Desktop; there is nothing to download.")
    return pull_repo(
        entry.repo_id, entry.revision, entry.allow_patterns, on_progress=on_progress, cancel=cancel,
        disk_usage=disk_usage, cache_dir=cache_dir, endpoint=endpoint, token=token,
    )


def pull_repo(
    repo_id: str, revision: str, allow_patterns: tuple[str, ...] | list[str], *,
    on_progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
    disk_usage: DiskUsage = shutil.disk_usage,
    cache_dir: Path | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> Path:
    from huggingface_hub import constants

    if constants.is_offline_mode():
        raise DownloadError("Downloads are switched off (HF_HUB_OFFLINE=1); unset HF_HUB_OFFLINE to pull models.")
    cache = Path(cache_dir) if cache_dir is not None else hub_cache_dir()
    cancel = cancel or threading.Event()
    plan = fetch_plan(repo_id, revision, allow_patterns, endpoint=endpoint, token=token)
    storage = repo_storage(repo_id, cache)
    snapshot = storage / "snapshots" / plan.commit
    receipt = read_receipt(storage, plan.commit) or {}
    done = {f.path for f in plan.files if _already_verified(f, snapshot, receipt)}
    todo = [f for f in plan.files if f.path not in done]
    partial = {f.path: file_size(storage / "blobs" / (f.blob_name + PARTIAL_SUFFIX)) for f in todo}
    _check_disk_space(sum(f.size - min(partial[f.path], f.size) for f in todo), cache, disk_usage, repo_id)

    tracker = ProgressTracker(plan.repo_id, plan.total_bytes, len(plan.files), on_progress, cancel)
    tracker.start(sum(f.size for f in plan.files if f.path in done), len(done), partial)
    _prepare_storage(storage, revision, plan.commit)
    verified = [f for f in plan.files if f.path in done]
    for remote in todo:
        if cancel.is_set():
            raise DownloadCancelled.for_repo(repo_id)
        _fetch_file(plan, remote, storage, tracker, cache, endpoint, token)
        verified.append(remote)
        if len(verified) < len(plan.files):  # a resumed pull need not hash these again
            _write_receipt(storage, plan, allow_patterns, verified)
    _write_receipt(storage, plan, allow_patterns, list(plan.files))
    tracker.finish()
    return snapshot


def _fetch_file(plan: DownloadPlan, remote: RemoteFile, storage: Path, tracker: ProgressTracker,
                cache: Path, endpoint: str | None, token: str | bool | None) -> None:
    """One file: resume its partial blob, verify, publish as a blob, link into the snapshot."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import WeakFileLock, build_hf_headers

    blobs = storage / "blobs"
    blob, part = blobs / remote.blob_name, blobs / (remote.blob_name + PARTIAL_SUFFIX)
    lock = cache / ".locks" / storage.name / f"{remote.blob_name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    tracker.begin_file(remote.path, file_size(part))
    with WeakFileLock(str(lock)), hub_errors(plan.repo_id, plan.revision, part):
        if blob.exists() and verify_file(blob, remote) is not None:
            blob.unlink()  # a damaged blob left by someone else: fetch it again
        if not blob.exists():
            url = hf_hub_url(plan.repo_id, remote.path, revision=plan.commit, endpoint=_endpoint(endpoint))
            meta = get_hf_file_metadata(url, token=token, endpoint=_endpoint(endpoint))
            if meta.size is not None and meta.size != remote.size:
                raise DownloadError(f"The Hub reports two sizes for {remote.path} of {plan.repo_id}; try again later.")
            resume = file_size(part)
            if resume > remote.size:
                part.unlink()
                resume = 0
            tracker.begin_file(remote.path, resume)
            # As hf_hub_download does: Xet-backed files stream from the resolve URL over plain HTTP;
            # others from where it redirects, without our token if that is another host (a CDN).
            source = url if meta.xet_file_data is not None else meta.location
            headers = build_hf_headers(token=token)
            if urlsplit(source).netloc != urlsplit(url).netloc:
                headers.pop("authorization", None)
            with open(part, "ab") as handle:
                http_get(source, handle, resume_size=resume, expected_size=remote.size, headers=headers,
                         displayed_filename=remote.path, tqdm_class=tracker.bar_class())
            problem = verify_file(part, remote)
            if problem is not None:
                part.unlink(missing_ok=True)
                raise DownloadError(
                    f"{remote.path} of {plan.repo_id} failed verification ({problem}); the damaged file was "
                    "discarded, run the pull again."
                )
            os.replace(part, blob)
    with hub_errors(plan.repo_id, plan.revision):  # outside our lock: hf_hub_download takes the same one
        pointer = hf_hub_download(plan.repo_id, remote.path, revision=plan.commit, cache_dir=str(cache),
                                  endpoint=_endpoint(endpoint), token=token)
    if Path(pointer).resolve() != blob.resolve() and verify_file(Path(pointer), remote) is not None:
        raise DownloadError(f"{remote.path} of {plan.repo_id} changed on the Hub during the pull; pull again.")
    tracker.end_file(remote.size)


# -- verification -----------------------------------------------------------------------------
def verify_file(path: Path, remote: RemoteFile) -> str | None:
    """None if ``path`` has the Hub's size and digest, else what is wrong (one phrase)."""
    size = file_size(path)
    if size != remote.size:
        return f"{size} bytes, the Hub says {remote.size}"
    if remote.sha256:
        digest = hashlib.sha256()
        expected = remote.sha256
    else:
        digest = hashlib.sha1(b"blob %d\0" % size)
        expected = remote.git_sha1 or ""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    got = digest.hexdigest()
    if got != expected:
        kind = "sha256" if remote.sha256 else "git sha1"
        return f"{kind} {got[:12]}… instead of {expected[:12]}…"
    return None


def _already_verified(remote: RemoteFile, snapshot: Path, receipt: dict) -> bool:
    """In the snapshot with the right size, and recorded as verified (else it is hashed now)."""
    pointer = snapshot / remote.path
    if not pointer.exists() or file_size(pointer) != remote.size:
        return False
    recorded = receipt.get("files", {}).get(remote.path, {})
    if recorded.get("blob") == remote.blob_name:
        return True
    return verify_file(pointer, remote) is None


def _write_receipt(storage: Path, plan: DownloadPlan, allow_patterns, verified: list[RemoteFile]) -> None:
    """What has been verified so far; ``complete`` once every planned file is in."""
    record = {
        "repo_id": plan.repo_id, "revision": plan.revision, "commit": plan.commit,
        "allow_patterns": list(allow_patterns), "complete": len(verified) == len(plan.files),
        "files": {f.path: {"size": f.size, "blob": f.blob_name, "sha256": f.sha256} for f in verified},
    }
    _atomic_write(receipt_path(storage, plan.commit), json.dumps(record, indent=1))


# -- helpers ----------------------------------------------------------------------------------
def _check_disk_space(needed: int, cache: Path, disk_usage: DiskUsage, repo_id: str) -> None:
    free, probe = free_space(cache, disk_usage)
    if needed > free:
        raise DownloadError(
            f"Not enough disk space for {repo_id}: it needs {format_size(needed)} more, {format_size(free)} is free "
            f"in {probe}; free some space (`lcm-desktop models du`) or set HF_HUB_CACHE to a bigger disk."
        )


def _prepare_storage(storage: Path, revision: str, commit: str) -> None:
    """blobs/, snapshots/<commit>/ and refs/<revision>: the repo is scannable from the first byte on."""
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    (storage / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
    if revision != commit:
        ref = storage / "refs" / revision
        if not ref.is_file() or ref.read_text() != commit:
            _atomic_write(ref, commit)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    publish_file(path, lambda handle: handle.write(text.encode("utf-8")), replace=True)


def _endpoint(endpoint: str | None) -> str | None:
    """An explicit endpoint, else ``HF_ENDPOINT`` as set now (huggingface_hub reads it only at import)."""
    return endpoint or os.environ.get("HF_ENDPOINT") or None
