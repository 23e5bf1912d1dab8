"""The history database: rows with image-to-image fields, and an upgrade of a version-1 database in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lcm_desktop.history import SCHEMA, VERSION, History

ROW = dict(prompt="a cat", negative_prompt="", steps=4, guidance_scale=8.0, seed=1, width=64, height=64,
           model="m", backend="torch:cpu:float32")


def test_rows_keep_strength_and_starting_image(tmp_path):
    history = History(tmp_path / "h.sqlite3")
    text = history.add(path=tmp_path / "a.png", **ROW)
    start = tmp_path / "starts" / "a-start.png"
    img2img = history.add(path=tmp_path / "b.png", strength=0.45, init_image=start, **ROW)
    assert (text.strength, text.init_image) == (1.0, None)
    assert [(e.id, e.strength, e.init_image) for e in history.entries()] == [
        (img2img.id, 0.45, start), (text.id, 1.0, None)]
    assert history.uses_start(start)
    assert history.remove(img2img.id).init_image == start and not history.uses_start(start)
    history.close()


def test_a_version_1_database_is_upgraded_and_keeps_its_rows(tmp_path):
    db = tmp_path / "old.sqlite3"
    con = sqlite3.connect(db)
    con.executescript(SCHEMA)  # version 1: no strength, no init_image
    con.execute("INSERT INTO images (created, path, prompt, negative_prompt, steps, guidance_scale, seed, width, "
                "height, model, backend, timings) VALUES (1.0, '/x.png', 'old', '', 4, 8.0, 7, 64, 64, 'm', 'b', '{}')")
    con.commit()
    con.close()
    history = History(db)
    (entry,) = history.entries()
    assert (entry.prompt, entry.seed, entry.strength, entry.init_image, entry.path, entry.origin) == (
        "old", 7, 1.0, None, Path("/x.png"), "app")
    history.close()
    history = History(db)  # opening again changes nothing
    assert len(history.entries()) == 1
    assert history._db.execute("PRAGMA user_version").fetchone()[0] == VERSION
    history.close()


def test_rows_record_who_asked_the_app_or_the_api(tmp_path):
    history = History(tmp_path / "h.sqlite3")
    app_row = history.add(path=tmp_path / "a.png", **ROW)
    api_row = history.add(path=tmp_path / "b.png", origin="api", **ROW)
    assert (app_row.origin, api_row.origin) == ("app", "api")
    assert [(e.id, e.origin) for e in history.entries()] == [(api_row.id, "api"), (app_row.id, "app")]
    history.close()
