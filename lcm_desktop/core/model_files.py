"""Reading one file of an untrusted model folder: regular files only, bounded, one error naming the file.

A model folder comes from strangers.  Every JSON config, tokenizer file and safetensors header the
app reads goes through here, so that a FIFO or device in place of a file (which would block or
never end), a huge file, bytes that are not UTF-8, JSON of the wrong shape or JSON nested deep
enough to exhaust the stack all end in one ``ModelFormatError``/``ModelCorruptError`` sentence that
names the file and says what to do, never in a traceback or a hang.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ModelCorruptError, ModelFormatError, UnsafeModelError

MAX_JSON_BYTES = 64 * 1024 * 1024  # CLIP's tokenizer.json is ~2 MB; configs are a few KB
MAX_TEXT_BYTES = 64 * 1024 * 1024  # merges.txt is ~0.5 MB
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit
# What is ever copied out of a model folder; code (.py, .so, scripts), pickles and the rest stay behind.
DATA_SUFFIXES = frozenset({".safetensors", ".json", ".txt", ".model", ".md", ".yaml", ".yml",
                           ".png", ".jpg", ".jpeg", ".webp"})
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def label(path: Path) -> str:
    """``unet/config.json``: the file with its folder, as users see it in the model folder."""
    return f"{path.parent.name}/{path.name}"


def repair_advice(path: Path) -> str:
    """What to do about a bad file: a downloaded model is downloaded again; a user's own folder is fixed."""
    try:
        parts = Path(os.path.realpath(path)).parts
    except (OSError, ValueError):
        parts = Path(path).parts
    if any(part.startswith("models--") for part in parts):  # the Hugging Face cache
        return "delete the model and download it again"
    return f"replace that {'folder' if Path(path).is_dir() else 'file'} with a good copy (or pick another model folder)"


def _unreadable(path: Path, exc: OSError, verb: str = "read") -> ModelCorruptError:
    return ModelCorruptError(f"{label(path)} cannot be {verb} ({exc.strerror or exc}); {repair_advice(path)}.")


def check_regular(path: Path) -> os.stat_result:
    """``os.stat`` (links followed) of a file that must be a regular file; refuse pipes, devices, sockets."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    _require_regular(path, info.st_mode)
    return info


def _require_regular(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise ModelFormatError(
        f"{label(path)} is {kind}, not a regular file, so it is not read; {repair_advice(path)}."
    )


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading without ever blocking on a FIFO (checked again on the open handle)."""
    check_regular(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _unreadable(path, exc, "opened") from exc
    try:
        _require_regular(path, os.fstat(fd).st_mode)  # it may have been swapped since the stat
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_bytes(path: Path, limit: int) -> bytes:
    with open_regular(path) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise _unreadable(path, exc) from exc
    if len(data) > limit:
        raise ModelCorruptError(
            f"{label(path)} is larger than {limit // (1024 * 1024)} MB, far more than such a file holds; "
            f"{repair_advice(path)}."
        )
    return data


def read_text(path: Path, limit: int = MAX_TEXT_BYTES) -> str:
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelCorruptError(
            f"{label(path)} is not UTF-8 text (bad byte at offset {exc.start}); {repair_advice(path)}."
        ) from exc


def read_json(path: Path, expect: type = dict, limit: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON file whose top level must be ``expect`` (a ``dict`` unless told otherwise)."""
    return parse_json(read_text(path, limit), path, expect)


def parse_json(text: str | bytes, path: Path, expect: type = dict) -> Any:
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise ModelCorruptError(
            f"{label(path)} is nested too deeply to be a model file; {repair_advice(path)}."
        ) from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer with too many digits
        detail = f"line {exc.lineno} column {exc.colno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else exc
        raise ModelCorruptError(f"{label(path)} is not valid JSON ({detail}); {repair_advice(path)}.") from exc
    if not isinstance(value, expect):
        raise ModelCorruptError(
            f"{label(path)} holds a JSON {_json_type(value)} where a JSON {_json_type(expect())} is expected; "
            f"{repair_advice(path)}."
        )
    return value


def _json_type(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(type(value), "number" if isinstance(
        value, (int, float)) else "null")


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: dict[str, dict[str, Any]]  # name -> {"dtype", "shape", "data_offsets"}
    raw: bytes  # the header's JSON bytes, as stored
    size: int  # bytes of the whole file


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """The header of a .safetensors file, checked: a JSON object of tensors whose data is all in the file.

    safetensors itself detects damage only when the tensors are loaded, with a message no user can act on.
    """
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise ModelCorruptError(f"{label(path)} is shorter than a safetensors header; {repair_advice(path)}.")
            (length,) = struct.unpack("<Q", prefix)
            if length > min(size - 8, MAX_HEADER_BYTES):
                raise ModelCorruptError(
                    f"{label(path)} is corrupt or incomplete (its header runs past the end of the file); "
                    f"{repair_advice(path)}."
                )
            raw = handle.read(length)
        except OSError as exc:
            raise _unreadable(path, exc) from exc
    header = parse_json(raw, path)
    end = 0
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        offsets = tensor.get("data_offsets") if isinstance(tensor, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int and o >= 0 for o in offsets)):
            raise ModelCorruptError(
                f"{label(path)} is corrupt (tensor {name[:60]!r} has no valid data offsets); {repair_advice(path)}."
            )
        end = max(end, offsets[1])
    if 8 + length + end > size:
        raise ModelCorruptError(
            f"{label(path)} is corrupt or incomplete (truncated: {size} bytes, {8 + length + end} expected); "
            f"{repair_advice(path)}."
        )
    return SafetensorsHeader({k: v for k, v in header.items() if k != "__metadata__"}, raw, size)


# -- copying a model folder ------------------------------------------------------------------
def data_files(source: Path, *, skip_dirs: frozenset[str] | set[str] = frozenset(),
               root: str | None = None) -> list[tuple[Path, Path, int]]:
    """``(relative path, real path, size)`` of each data file of a model folder, to be copied.

    Only ``DATA_SUFFIXES`` files are listed (code, pickles and unknown files are never opened);
    hidden files and ``skip_dirs`` are skipped; a link whose target lies outside the folder (or, for
    a Hugging Face cache snapshot, outside its ``models--org--name`` folder) is refused, and so is
    anything that is not a regular file.  ``root``: where links may point (default: ``link_root(source)``);
    """
    root = root or link_root(source)
    files, seen = [], set()
    for dirpath, dirs, names in os.walk(source, followlinks=True):
        real_dir = os.path.realpath(dirpath)
        if real_dir in seen:  # a link cycle, or a folder linked twice
            dirs[:] = []
            continue
        seen.add(real_dir)
        _require_inside(Path(dirpath), real_dir, root, source)
        dirs[:] = sorted(d for d in dirs if d not in skip_dirs and not d.startswith("."))
        for file in sorted(names):
            path = Path(dirpath) / file
            if file.startswith(".") or path.suffix.lower() not in DATA_SUFFIXES:
                continue  # never opened: code, pickles and unknown files stay behind
            real = os.path.realpath(path)
            _require_inside(path, real, root, source)
            files.append((path.relative_to(source), Path(real), check_regular(Path(real)).st_size))
    return files


def link_root(source: Path) -> str:
    """The folder links may point into: the source itself, or a Hugging Face cache repository folder."""
    real = Path(os.path.realpath(source))
    parts = real.parts
    for i in range(len(parts) - 2):
        if parts[i].startswith("models--") and parts[i + 1] == "snapshots":
            return str(Path(*parts[: i + 1]))
    return str(real)


def _require_inside(path: Path, real: str, root: str, source: Path, verb: str = "copy") -> None:
    if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
        return
    try:
        shown = path.relative_to(source.parent)
    except ValueError:
        shown = path
    raise UnsafeModelError(
        f"Refusing to {verb} {shown}: it {'links to' if os.path.islink(path) else 'is'} {real}, outside the "
        f"{'model' if verb == 'copy' else source.name} folder; copy the file itself into the folder and try again."
    )


# -- reading inside a folder a user handed us ------------------------------------------------
def confined_file(folder: Path, path: Path, *, root: str | None = None) -> Path:
    """The real path of ``path`` if it is a regular file inside ``folder`` (links resolved, staying inside
    ``root``, by default ``link_root(folder)``): never a link out of it, a FIFO, a device or a folder.

    ``UnsafeModelError`` (outside) or ``ModelFormatError`` (not a regular file), one line naming the file.
    """
    folder = Path(folder)
    real = os.path.realpath(path)
    _require_inside(Path(path), real, root or link_root(folder), folder, "read")
    check_regular(Path(real))
    return Path(real)


def read_confined(folder: Path, path: Path, limit: int, *, truncate: bool = False) -> bytes:
    """The bytes of ``confined_file(folder, path)``: at most ``limit``; more is an error unless ``truncate``
    (then the first ``limit`` bytes: an 8 GB caption file costs what a short one does)."""
    real = confined_file(folder, path)
    if not truncate:
        return read_bytes(real, limit)
    with open_regular(real) as handle:
        try:
            return handle.read(limit)
        except OSError as exc:
            raise _unreadable(real, exc) from exc


def check_confined_tree(folder: Path, relative: str | Path = ".", *, root: str | None = None) -> Path:
    """Check that ``folder/relative`` and everything under it stays inside ``folder`` (links resolved) and that
    every file is a regular file — a converted model's package or tokenizer folder before anything reads it
    (a manifest path like ``../../x``, weights linked to ``/dev/zero`` or a private file, a FIFO that hangs the
    load).  Returns the real path."""
    folder = Path(folder)
    root = root or link_root(folder)
    start = folder / relative
    real_start = os.path.realpath(start)
    _require_inside(start, real_start, root, folder, "read")
    if not os.path.isdir(real_start):
        check_regular(Path(real_start))
        return Path(real_start)
    seen: set[str] = set()
    for dirpath, dirs, names in os.walk(real_start, followlinks=True):
        real_dir = os.path.realpath(dirpath)
        _require_inside(Path(dirpath), real_dir, root, folder, "read")
        if real_dir in seen:
            dirs[:] = []
            continue
        seen.add(real_dir)
        for name in names:
            path = Path(dirpath) / name
            real = os.path.realpath(path)
            _require_inside(path, real, root, folder, "read")
            check_regular(Path(real))
    return Path(real_start)


def copy_data_file(real: Path, dest: Path, size: int) -> None:
    """Copy a regular file into a new ``dest`` (created with the user's umask), at most ``size`` bytes.

    ``size`` is what a disk-space check counted, so a file that grows meanwhile cannot fill the disk.
    OSError (a full disk, a failed write) is the caller's to word.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open_regular(real) as src, open(dest, "xb") as out:
        remaining = size
        while remaining > 0 and (chunk := src.read(min(remaining, 1 << 22))):
            out.write(chunk)
            remaining -= len(chunk)


def copy_confined_tree(source: Path, dest: Path, *, skip_dirs: frozenset[str] | set[str] = frozenset()) -> int:
    """Copy a model folder's data files (``data_files``: inside it, regular, listed sizes) into ``dest``.

    Unlike ``shutil.copytree`` no link is followed out of ``source`` (a private file, ``/dev/zero``) and
    no FIFO blocks the copy; each file is copied up to the size it had when listed.  Returns the bytes copied.
    """
    files = data_files(Path(source), skip_dirs=skip_dirs)
    for relative, real, size in files:
        copy_data_file(real, Path(dest) / relative, size)
    return sum(size for _, _, size in files)
