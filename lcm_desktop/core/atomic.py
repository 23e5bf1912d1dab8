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
"""

from __future__ import annotations

import errno
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

PART_SUFFIX = ".part"
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


def clean_stale_parts(folder: Path | str, *, older_than: float = STALE_AFTER_SECONDS) -> int:
    """Remove our hidden ``.*.part`` leftovers (a crash or kill -9 while saving) older than ``older_than`` s.

    Recent ones are kept: another process may be writing them right now.  Returns how many were removed.
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
            if part.is_file() and not part.is_symlink() and part.stat().st_mtime < cutoff:
                part.unlink()
                removed += 1
        except OSError:
            continue  # someone else's file, or gone already
    return removed
