"""Writing files so that nothing half-written is ever visible and nothing is replaced by surprise.

    publish_file(path, lambda f: image.save(f, format="PNG"))               # fails if path exists
    publish_file(path, write, replace=True)                                  # --overwrite

The data goes to a hidden ``.<name>.<random>.part`` file beside the target, is flushed to disk,
then published: with ``os.link`` when the target must be new (the link fails with
``FileExistsError`` if a file of that name appeared meanwhile — an atomic "create exclusively",
unlike checking first and writing after), or with ``os.replace`` when replacing was asked for.
The temp file is created with mode 0o666 so the user's umask decides the permissions, as for any
file a program creates (``tempfile.mkstemp`` would force 0600).  Python's standard library has no
"rename without replacing" (Linux ``renameat2``, macOS ``renamex_np``), hence the hard link.

Folders (a model, a converted model, a compiled Core ML model, a trained full model) are published
the same way, by ``publish_dir``:

    publish_dir(target, lambda work: build_into(work), replace=force)

The folder is built in a hidden ``.<name>.<pid>-<random>.part`` sibling; then an existing target
(only with ``replace``) is moved aside to ``.<name>.<pid>-<random>.old.part``, the new folder is
renamed into place and the old one removed — and if the rename fails, the old one is renamed
back, so the user's folder is never lost (deleting it before the rename loses it to a crash).
``clean_stale_parts`` removes such folders once their process is gone, and puts a moved-aside
folder back if a crash left no target.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

PART_SUFFIX = ".part"
OLD_SUFFIX = ".old" + PART_SUFFIX
# ``.<name>.<pid>-<random>.part`` or ``….old.part``: a folder of ours, the pid of the process that builds it.
_DIR_PART = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}(?P<old>\.old)?\.part$")
STALE_AFTER_SECONDS = 300.0  # a save takes well under a second; older temp files are leftovers of a crash

# Filesystems without hard links (FAT, some network shares) answer one of these.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


def part_path(path: Path) -> Path:
    """A fresh hidden temp name beside ``path``: ``.<stem>.<random><suffix>.part``."""
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}{PART_SUFFIX}")


def publish_file(path: Path | str, write: Callable[[BinaryIO], None], *, replace: bool = False) -> Path:
    """Write ``path`` through ``write(handle)``; raise ``FileExistsError`` if it exists and not ``replace``."""
    path = Path(path)
    tmp = part_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _link_new(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise  # FileExistsError included
        # No hard links here: reserve the name exclusively, then move the finished file over our own placeholder.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(tmp, path)


def dir_part_path(target: Path, *, old: bool = False) -> Path:
    """A fresh hidden sibling of ``target`` for building (or, ``old``, for moving it aside)."""
    suffix = OLD_SUFFIX if old else PART_SUFFIX
    return target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")


def publish_dir(target: Path | str, build: Callable[[Path], None], *, replace: bool = False) -> Path:
    """Build a folder with ``build(work)`` and rename it to ``target`` (see the module docstring).

    Raises ``FileExistsError`` if ``target`` exists and not ``replace`` (then, or on any failure of
    ``build``, the work folder is removed and ``target`` is untouched).  OSError is the caller's to word.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_parts(target.parent)
    work = dir_part_path(target)
    work.mkdir()  # the user's umask decides the permissions (tempfile.mkdtemp would force 0700)
    try:
        build(work)
        _swap_in(work, target, replace)
    except BaseException:
        _remove(work)
        raise
    return target


def _swap_in(work: Path, target: Path, replace: bool) -> None:
    if not os.path.lexists(target):
        os.rename(work, target)  # on POSIX this would also replace an empty folder: checked just before
        return
    if not replace:
        raise FileExistsError(errno.EEXIST, "already exists", str(target))
    old = dir_part_path(target, old=True)
    os.rename(target, old)
    try:
        os.rename(work, target)
    except BaseException:
        os.rename(old, target)  # put the user's folder back
        raise
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def _clean_dir_part(part: Path, cutoff: float) -> bool:
    """A stale folder of ``publish_dir``: removed, or renamed back if it is a moved-aside target with none left."""
    match = _DIR_PART.match(part.name)
    if match is None or _pid_alive(int(match["pid"])) or part.stat().st_mtime >= cutoff:
        return False
    target = part.with_name(match["name"])
    if match["old"] and not os.path.lexists(target):
        os.rename(part, target)  # the crash came between the two renames: the old folder is the only copy
    else:
        shutil.rmtree(part)
    return True


def clean_stale_parts(folder: Path | str, *, older_than: float = STALE_AFTER_SECONDS) -> int:
    """Remove our hidden ``.*.part`` leftovers (a crash or kill -9 while saving) older than ``older_than`` s.

    Recent ones are kept: another process may be writing them right now; a folder is kept while the
    process named in it runs.  Returns how many were removed (or restored).
    """
    folder = Path(folder)
    removed = 0
    cutoff = time.time() - older_than
    try:
        candidates = list(folder.glob(f".*{PART_SUFFIX}"))
    except OSError:
        return 0
    for part in candidates:
        try:
            if part.is_symlink():
                continue
            if part.is_dir():
                removed += _clean_dir_part(part, cutoff)
            elif part.is_file() and part.stat().st_mtime < cutoff:
                part.unlink()
                removed += 1
        except OSError:
            continue  # someone else's file, or gone already
    return removed
