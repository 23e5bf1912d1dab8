"""A bad history database never stops the app (issue 25 item 5): each case opens at once, and says why."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from lcm_desktop import history as history_module
from lcm_desktop.history import History


def _row(history: History, name: str = "a.png"):
    return history.add(path=Path(name), prompt="p", negative_prompt="", steps=2, guidance_scale=1.0, seed=1,
                       width=64, height=64, model="m", backend="torch")


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_fifo_or_folder_in_place_of_the_database_is_never_opened(tmp_path, kind):
    db = tmp_path / "history.sqlite3"
    os.mkfifo(db) if kind == "fifo" else db.mkdir()
    history = History(db)  # sqlite would block forever opening a FIFO
    assert ("named pipe" if kind == "fifo" else "a folder") in history.problem
    assert _row(history).id == 1 and len(history.entries()) == 1  # this session's history, in memory
    assert (db.is_fifo() if kind == "fifo" else db.is_dir())  # left as it was


def test_a_damaged_database_is_moved_aside_and_a_new_one_started(tmp_path):
    db = tmp_path / "history.sqlite3"
    db.write_bytes(b"this is not sqlite" * 100)
    history = History(db)
    (aside,) = tmp_path.glob("history.sqlite3.damaged-*")
    assert aside.read_bytes() == b"this is not sqlite" * 100
    assert str(aside) in history.problem
    _row(history)
    history.close()
    assert [e.id for e in History(db).entries()] == [1]  # a real database now


def test_a_locked_database_is_waited_for_briefly_then_kept_in_memory(tmp_path):
    db = tmp_path / "history.sqlite3"
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN EXCLUSIVE")
    try:
        history = History(db, timeout=0.05)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "locked by another program" in history.problem
    assert _row(history) is not None


def test_a_read_only_database_is_shown_and_new_images_are_not_recorded(tmp_path, monkeypatch):
    db = tmp_path / "history.sqlite3"
    first = History(db)
    _row(first)
    first.close()
    real = History._connect

    def connect(self, target, timeout, *, uri=False, migrate=True):
        if not uri:  # what the read-write open of a file the user cannot write answers (tests run as root)
            error = sqlite3.OperationalError("attempt to write a readonly database")
            error.sqlite_errorname = "SQLITE_READONLY"
            raise error
        return real(self, target, timeout, uri=uri, migrate=migrate)

    monkeypatch.setattr(History, "_connect", connect)
    history = History(db)
    assert history.read_only and "read-only" in history.problem
    assert [e.path.name for e in history.entries()] == ["a.png"]
    assert _row(history, "b.png") is None


def test_one_row_with_bad_json_is_skipped_with_a_log_line(tmp_path, caplog):
    history = History(tmp_path / "history.sqlite3")
    for name in ("a.png", "bad.png", "c.png"):
        _row(history, name)
    history._db.execute("UPDATE images SET timings = '{not json' WHERE path = 'bad.png'")
    history._db.execute("UPDATE images SET loras = '[[1,2,3]]' WHERE path = 'c.png'")  # read as no styles
    with caplog.at_level("WARNING", logger=history_module.__name__):
        names = [e.path.name for e in history.entries()]
    assert names == ["c.png", "a.png"]
    assert "history row 2 skipped" in caplog.text
    assert history.problem == ""


def test_opening_never_waits_on_the_lock_of_another_thread(tmp_path):
    """The same file opened twice in one process (two windows): the second opens without a problem."""
    db = tmp_path / "history.sqlite3"
    first = History(db)
    opened = []
    thread = threading.Thread(target=lambda: opened.append(History(db)))
    thread.start()
    thread.join(timeout=60)
    assert opened and opened[0].problem == "" and not first.problem
