"""The history of generated images: sqlite3 in the app data folder (no Qt).

One row per image, written in a transaction after its PNG is on disk, so killing the app
mid-generation loses at most the image in progress, and a half-written row never exists.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
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

    @property
    def exists(self) -> bool:
        return self.path.is_file()


class History:
    """Thread-safe: the engine thread adds rows, the GUI thread reads and deletes."""

    def __init__(self, database: Path):
        database.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(database), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def add(self, *, path: Path, prompt: str, negative_prompt: str, steps: int, guidance_scale: float, seed: int,
            width: int, height: int, model: str, backend: str, timings: dict[str, Any] | None = None) -> HistoryEntry:
        created = time.time()
        row = (created, str(path), prompt, negative_prompt, steps, guidance_scale, seed, width, height, model, backend,
               json.dumps(timings or {}))
        with self._lock, self._db:
            self._db.execute("BEGIN")
            cursor = self._db.execute(
                "INSERT INTO images (created, path, prompt, negative_prompt, steps, guidance_scale, seed, width, "
                "height, model, backend, timings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        return HistoryEntry(cursor.lastrowid, created, Path(path), prompt, negative_prompt, steps, guidance_scale,
                            seed, width, height, model, backend, timings or {})

    def entries(self, limit: int = 500) -> list[HistoryEntry]:
        """Newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, created, path, prompt, negative_prompt, steps, guidance_scale, seed, width, height, "
                "model, backend, timings FROM images ORDER BY created DESC, id DESC LIMIT ?", (limit,)).fetchall()
        return [HistoryEntry(r[0], r[1], Path(r[2]), *r[3:12], json.loads(r[12] or "{}")) for r in rows]

    def remove(self, entry_id: int) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM images WHERE id = ?", (entry_id,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
