"""The history of generated images: sqlite3 in the app data folder (no Qt).

One row per image, written in a transaction after its PNG is on disk, so killing the app
mid-generation loses at most the image in progress, and a half-written row never exists.
Image-to-image rows also name their starting image: a copy at the request's size in the app's
``starts`` folder (the canvas of a sketch, or the fitted photo), so a picture can be reopened with it.
"""

from __future__ import annotations

import json
import sqlite3
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


class History:
    """Thread-safe: the engine thread adds rows, the GUI thread reads and deletes."""

    def __init__(self, database: Path):
        database.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(database), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        self._migrate()

    def _migrate(self) -> None:
        """Create the table, then bring an older database up to ``VERSION`` (PRAGMA user_version), one step per
        transaction, so a crash mid-upgrade leaves a database that the next start upgrades again."""
        self._db.executescript(SCHEMA)
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        have = {row[1] for row in self._db.execute("PRAGMA table_info(images)")}
        for target in sorted(v for v in MIGRATIONS if v > version):
            with self._db:
                self._db.execute("BEGIN")
                for statement in MIGRATIONS[target]:
                    column = statement.split("ADD COLUMN ")[1].split()[0]
                    if column not in have:
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {target}")

    def add(self, *, path: Path, prompt: str, negative_prompt: str, steps: int, guidance_scale: float, seed: int,
            width: int, height: int, model: str, backend: str, timings: dict[str, Any] | None = None,
            strength: float = 1.0, init_image: Path | None = None,
            loras: tuple[tuple[str, float], ...] = (), origin: str = "app") -> HistoryEntry:
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
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM images ORDER BY created DESC, id DESC LIMIT ?", (limit,)).fetchall()
        return [_entry(dict(zip(COLUMNS, row))) for row in rows]

    def remove(self, entry_id: int) -> HistoryEntry | None:
        """Delete one row; returns it (its starting image is the caller's to delete when no other row uses it)."""
        with self._lock, self._db:
            row = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM images WHERE id = ?", (entry_id,)).fetchone()
            self._db.execute("DELETE FROM images WHERE id = ?", (entry_id,))
        return _entry(dict(zip(COLUMNS, row))) if row else None

    def uses_start(self, init_image: Path) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM images WHERE init_image = ? LIMIT 1",
                                    (str(init_image),)).fetchone() is not None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _entry(row: dict[str, Any]) -> HistoryEntry:
    row["path"] = Path(row["path"])
    row["timings"] = json.loads(row["timings"] or "{}")
    row["init_image"] = Path(row["init_image"]) if row["init_image"] else None
    row["loras"] = _loras(row["loras"])
    return HistoryEntry(**row)


def _loras(text: str) -> tuple[tuple[str, float], ...]:
    """The stored styles; a damaged value reads as none (the row stays usable)."""
    try:
        return tuple((str(name), float(weight)) for name, weight in json.loads(text or "[]"))
    except (TypeError, ValueError):
        return ()
