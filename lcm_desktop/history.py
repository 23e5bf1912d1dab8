"""The history of generated images: sqlite3 in the app data folder (no Qt).

One row per image, written in a transaction after its PNG is on disk, so killing the app
mid-generation loses at most the image in progress, and a half-written row never exists.
Image-to-image rows also name their starting image: a copy at the request's size in the app's
``starts`` folder (the canvas of a sketch, or the fitted photo), so a picture can be reopened with it.

The app always starts, whatever the database file has become (``History.open``): a FIFO, device
or folder in its place is never opened (sqlite would block on a FIFO) and the history is kept in
memory for the session; a damaged file is moved aside (``history.sqlite3.damaged-<time>``) and a
new one started; a file that cannot be written is read only (new images are not recorded); one
locked by another process is waited for ``LOCK_TIMEOUT_S``, then kept in memory.  ``problem`` says
which, in one sentence for the window's status bar and the log.  A row that cannot be read (bad
JSON, wrong types) is skipped with a log line; the other rows are listed.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    path TEXT NOT NULL,
    prompt TEXT NOT NULL,
    negative_prompt TEXT NOT NULL DEFAULT '',
    steps INTEGER NOT NULL,
    guidance_scale REAL NOT NULL,
    seed INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    model TEXT NOT NULL,
    backend TEXT NOT NULL,
    timings TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS images_created ON images(created);
"""
# Version 2 (image-to-image): the strength and the starting image's copy ('' for text-to-image).
MIGRATIONS = {
    2: ["ALTER TABLE images ADD COLUMN strength REAL NOT NULL DEFAULT 1.0",
        "ALTER TABLE images ADD COLUMN init_image TEXT NOT NULL DEFAULT ''"],
    3: ["ALTER TABLE images ADD COLUMN loras TEXT NOT NULL DEFAULT '[]'"],  # [[style name, weight], …]
    4: ["ALTER TABLE images ADD COLUMN origin TEXT NOT NULL DEFAULT 'app'"],  # "app" or "api" (the local API)
}
VERSION = max(MIGRATIONS)
LOCK_TIMEOUT_S = 2.0  # how long a database locked by another process is waited for (sqlite's default is 5 s)
log = logging.getLogger(__name__)
COLUMNS = ("id", "created", "path", "prompt", "negative_prompt", "steps", "guidance_scale", "seed", "width", "height",
           "model", "backend", "timings", "strength", "init_image", "loras", "origin")


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    created: float
    path: Path
    prompt: str
    negative_prompt: str
    steps: int
    guidance_scale: float
    seed: int
    width: int
    height: int
    model: str
    backend: str
    timings: dict[str, Any] = field(default_factory=dict)
    strength: float = 1.0
    init_image: Path | None = None  # the starting image's copy (image-to-image), None for text-to-image
    loras: tuple[tuple[str, float], ...] = ()  # the styles the panel applied (name, weight); tags stay in the prompt
    origin: str = "app"  # who asked for it: "app", or "api" (a client of `lcm-desktop serve` or the app's server)

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    @property
    def has_start(self) -> bool:
        return self.init_image is not None and self.init_image.is_file()

    @property
    def mask(self) -> Path | None:
        """The mask it was inpainted with (kept beside the start's copy, ``mask_path``), or None."""
        path = mask_path(self.init_image) if self.init_image is not None else None
        return path if path is not None and path.is_file() else None


def mask_path(start: Path) -> Path:
    """Where the mask of an inpainted picture is kept: beside its start's copy (no column: the name says it)."""
    return start.with_name(f"{start.stem}-mask.png")


class History:
    """Thread-safe: the engine thread adds rows, the GUI thread reads and deletes."""

    def __init__(self, database: Path, *, timeout: float = LOCK_TIMEOUT_S):
        self.path = Path(database)
        self.problem = ""  # one sentence when this is not the usual read-write history (see the module docstring)
        self.read_only = False
        self._lock = threading.Lock()
        self._db = self._open(timeout)

    def _open(self, timeout: float) -> sqlite3.Connection:
        database = self.path
        database.parent.mkdir(parents=True, exist_ok=True)
        kind = _file_kind(database)
        if kind:
            return self._in_memory(f"{database} is {kind}, not a history database; this session's history is kept "
                                   "in memory only (move it away to keep the history again).")
        try:
            return self._connect(str(database), timeout)
        except sqlite3.DatabaseError as exc:
            reason = getattr(exc, "sqlite_errorname", "")
        if reason in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            aside = database.with_name(f"{database.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                for suffix in ("", "-wal", "-shm"):
                    if os.path.lexists(f"{database}{suffix}"):
                        os.replace(f"{database}{suffix}", f"{aside}{suffix}")
                db = self._connect(str(database), timeout)
            except (OSError, sqlite3.DatabaseError):
                return self._in_memory(f"{database} is damaged and cannot be moved aside; this session's history "
                                       "is kept in memory only.")
            self._say(f"The history database was damaged; it was moved to {aside} and a new history started.")
            return db
        if reason in ("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CANTOPEN", "SQLITE_AUTH"):
            try:
                db = self._connect(f"{database.resolve().as_uri()}?mode=ro", timeout, uri=True, migrate=False)
                db.execute("SELECT 1 FROM images LIMIT 1").fetchall()
            except (sqlite3.DatabaseError, ValueError):
                return self._in_memory(f"{database} cannot be opened ({reason}); this session's history is kept "
                                       "in memory only (check the file's permissions).")
            self.read_only = True
            self._say(f"{database} is read-only: the history is shown, but new images are not added to it "
                      "(check the file's permissions).")
            return db
        busy = "is locked by another program" if reason in ("SQLITE_BUSY", "SQLITE_LOCKED") else \
            f"cannot be opened ({reason or 'unknown error'})"
        return self._in_memory(f"{database} {busy}; this session's history is kept in memory only.")

    def _connect(self, target: str, timeout: float, *, uri: bool = False, migrate: bool = True) -> sqlite3.Connection:
        db = sqlite3.connect(target, timeout=timeout, check_same_thread=False, isolation_level=None, uri=uri)
        try:
            if migrate:
                db.execute("PRAGMA journal_mode=WAL")
                self._migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _in_memory(self, problem: str) -> sqlite3.Connection:
        self._say(problem)
        return self._connect(":memory:", 0)

    def _say(self, problem: str) -> None:
        self.problem = problem
        log.warning("%s", problem)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Create the table, then bring an older database up to ``VERSION`` (PRAGMA user_version), one step per
        transaction, so a crash mid-upgrade leaves a database that the next start upgrades again."""
        db.executescript(SCHEMA)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        have = {row[1] for row in db.execute("PRAGMA table_info(images)")}
        for target in sorted(v for v in MIGRATIONS if v > version):
            with db:
                db.execute("BEGIN")
                for statement in MIGRATIONS[target]:
                    column = statement.split("ADD COLUMN ")[1].split()[0]
                    if column not in have:
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")

    def add(self, *, path: Path, prompt: str, negative_prompt: str, steps: int, guidance_scale: float, seed: int,
            width: int, height: int, model: str, backend: str, timings: dict[str, Any] | None = None,
            strength: float = 1.0, init_image: Path | None = None,
            loras: tuple[tuple[str, float], ...] = (), origin: str = "app") -> HistoryEntry | None:
        """Record one written image; None when the history is read-only (the image itself is kept)."""
        if self.read_only:
            return None
        entry = HistoryEntry(0, time.time(), Path(path), prompt, negative_prompt, steps, guidance_scale, seed, width,
                             height, model, backend, timings or {}, strength, init_image,
                             tuple((str(n), float(w)) for n, w in loras), origin)
        row = (entry.created, str(path), prompt, negative_prompt, steps, guidance_scale, seed, width, height, model,
               backend, json.dumps(entry.timings), strength, str(init_image) if init_image is not None else "",
               json.dumps(entry.loras), origin)
        with self._lock, self._db:
            self._db.execute("BEGIN")
            cursor = self._db.execute(
                f"INSERT INTO images ({', '.join(COLUMNS[1:])}) VALUES ({', '.join('?' * len(row))})", row)
        return replace(entry, id=cursor.lastrowid)

    def entries(self, limit: int = 500) -> list[HistoryEntry]:
        """Newest first."""
        try:
            with self._lock:
                rows = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM images ORDER BY created DESC, id DESC "
                                        "LIMIT ?", (limit,)).fetchall()
        except sqlite3.DatabaseError as exc:  # damaged pages behind a good header show only when read
            log.warning("the history cannot be read (%s); it is shown empty", exc)
            return []
        return [entry for row in rows if (entry := _readable_entry(row)) is not None]

    def remove(self, entry_id: int) -> HistoryEntry | None:
        """Delete one row; returns it (its starting image is the caller's to delete when no other row uses it)."""
        with self._lock, self._db:
            row = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM images WHERE id = ?", (entry_id,)).fetchone()
            self._db.execute("DELETE FROM images WHERE id = ?", (entry_id,))
        return _readable_entry(row) if row else None

    def uses_start(self, init_image: Path) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM images WHERE init_image = ? LIMIT 1",
                                    (str(init_image),)).fetchone() is not None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _file_kind(path: Path) -> str:
    """What is in place of the database if it is not a regular file (never opened: sqlite blocks on a FIFO)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return ""
    return ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
            else "a device or socket")


def _readable_entry(row: tuple) -> HistoryEntry | None:
    """One row as an entry; a row that cannot be read is logged and skipped (the rest stay usable)."""
    try:
        return _entry(dict(zip(COLUMNS, row)))
    except (TypeError, ValueError, RecursionError) as exc:
        log.warning("history row %s skipped: it cannot be read (%s)", row[0] if row else "?", str(exc)[:200])
        return None


def _entry(row: dict[str, Any]) -> HistoryEntry:
    row["path"] = Path(row["path"])
    row["timings"] = json.loads(row["timings"] or "{}")
    if not isinstance(row["timings"], dict):
        raise ValueError("timings is not a JSON object")
    row["init_image"] = Path(row["init_image"]) if row["init_image"] else None
    row["loras"] = _loras(row["loras"])
    return HistoryEntry(**row)


def _loras(text: str) -> tuple[tuple[str, float], ...]:
    """The stored styles; a damaged value reads as none (the row stays usable)."""
    try:
        return tuple((str(name), float(weight)) for name, weight in json.loads(text or "[]"))
    except (TypeError, ValueError):
        return ()
