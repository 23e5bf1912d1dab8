"""Publishing a folder (issue 25 item 4, review B-6): one helper, never losing the user's folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lcm_desktop.core import atomic
from lcm_desktop.core.atomic import clean_stale_parts, dir_part_path, publish_dir


def _write(files: dict[str, str]):
    def build(work: Path) -> None:
        for name, text in files.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)

    return build


def test_a_new_folder_appears_complete_and_no_work_folder_is_left(tmp_path):
    target = tmp_path / "models" / "m"
    seen: list[bool] = []

    def build(work: Path) -> None:
        seen.append(target.exists())
        _write({"a/b.json": "{}"})(work)

    assert publish_dir(target, build) == target
    assert seen == [False] and (target / "a" / "b.json").read_text() == "{}"
    assert [p.name for p in target.parent.iterdir()] == ["m"]


def test_an_existing_folder_is_never_replaced_without_replace(tmp_path):
    target = tmp_path / "m"
    target.mkdir()  # even an empty one (POSIX rename would replace it silently)
    with pytest.raises(FileExistsError):
        publish_dir(target, _write({"x": "new"}))
    assert list(target.iterdir()) == [] and [p.name for p in tmp_path.iterdir()] == ["m"]


def test_a_failed_build_leaves_the_old_folder_and_no_leftovers(tmp_path):
    target = tmp_path / "m"
    publish_dir(target, _write({"x": "old"}))

    def boom(work: Path) -> None:
        (work / "x").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        publish_dir(target, boom, replace=True)
    assert (target / "x").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["m"]


def test_replace_swaps_and_a_failed_rename_puts_the_old_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "m"
    publish_dir(target, _write({"x": "old"}))
    publish_dir(target, _write({"y": "new"}), replace=True)
    assert [p.name for p in target.iterdir()] == ["y"] and [p.name for p in tmp_path.iterdir()] == ["m"]

    real_rename = os.rename

    def rename(src, dst):
        if Path(src).name.endswith(atomic.PART_SUFFIX) and not Path(src).name.endswith(atomic.OLD_SUFFIX):
            raise OSError(28, "No space left on device")  # the new folder cannot be moved in
        real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", rename)
    with pytest.raises(OSError, match="No space"):
        publish_dir(target, _write({"z": "newer"}), replace=True)
    assert [p.name for p in target.iterdir()] == ["y"] and [p.name for p in tmp_path.iterdir()] == ["m"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=60)
    return child.pid


def test_stale_folders_of_a_dead_process_are_cleaned_and_a_lone_old_copy_restored(tmp_path):
    dead = _dead_pid()
    hour_ago = time.time() - 3600
    building = tmp_path / f".m.{dead}-0123abcd.part"  # a build killed half-way
    aside = tmp_path / f".n.{dead}-4567abcd.old.part"  # killed between the two renames: the only copy of n
    extra = tmp_path / f".o.{dead}-89abcdef.old.part"  # o itself exists: the moved-aside copy is garbage
    live = dir_part_path(tmp_path / "p")  # this process's own work: never touched
    for folder in (building, aside, extra, live, tmp_path / "o"):
        folder.mkdir()
        (folder / "f").write_text(folder.name)
        os.utime(folder, (hour_ago, hour_ago))
    assert clean_stale_parts(tmp_path) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["n", "o", live.name])
    assert (tmp_path / "n" / "f").read_text() == aside.name


def test_the_trainers_old_leftover_name_is_not_taken_for_ours(tmp_path):
    (tmp_path / ".style.part").mkdir()  # no pid: not a publish_dir folder; kept (someone else's)
    assert clean_stale_parts(tmp_path, older_than=-1) == 0 and (tmp_path / ".style.part").is_dir()
