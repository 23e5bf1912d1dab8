"""The download progress tracker on its own: bytes and files counted across resumes, tqdm's hook, cancel."""

from __future__ import annotations

import threading

import pytest

from lcm_desktop.models.progress import DownloadCancelled, DownloadProgress, ProgressTracker


def _tracker(cancel: threading.Event | None = None):
    events: list[DownloadProgress] = []
    tracker = ProgressTracker("org/repo", 1000, 3, events.append, cancel or threading.Event())
    return tracker, events


def test_a_resumed_pull_counts_finished_and_partial_bytes_then_each_file():
    tracker, events = _tracker()
    # one file of 600 bytes already verified; "b.bin" has 50 bytes of a partial blob on disk
    tracker.start(600, 1, {"b.bin": 50, "c.bin": 0})
    assert events[-1] == DownloadProgress(650, 1000, 1, 3, None)

    tracker.begin_file("b.bin", 50)
    bar = tracker.bar_class()(total=300, initial=50)
    with bar:
        bar.update(100)
        bar.update(None)  # tqdm may call update() with None; it counts as nothing
    assert events[-1] == DownloadProgress(750, 1000, 1, 3, "b.bin")

    tracker.end_file(300)
    assert events[-1] == DownloadProgress(900, 1000, 2, 3, None)
    tracker.begin_file("c.bin", 0)
    tracker.advance(100)
    tracker.end_file(100)
    tracker.finish()
    assert events[-1] == DownloadProgress(1000, 1000, 3, 3, None)


def test_a_bar_that_starts_over_resets_the_current_file():
    """The server ignored our Range: huggingface_hub opens the bar with initial=0 and sends the whole file."""
    tracker, events = _tracker()
    tracker.start(0, 0, {"a.bin": 400})
    tracker.begin_file("a.bin", 400)
    assert events[-1].bytes_done == 400
    bar = tracker.bar_class()(initial=0)
    bar.update(10)
    assert events[-1] == DownloadProgress(10, 1000, 0, 3, "a.bin")


def test_cancel_is_raised_at_the_next_update_with_the_repo_named():
    cancel = threading.Event()
    tracker, events = _tracker(cancel)
    tracker.start(0, 0, {})
    tracker.begin_file("a.bin", 0)
    tracker.advance(5)
    cancel.set()
    with pytest.raises(DownloadCancelled, match=r"^Download of org/repo cancelled; .* pull again to resume\.$"):
        tracker.advance(5)
    assert events[-1].bytes_done == 10  # the last update is still reported


def test_no_callback_is_fine():
    tracker = ProgressTracker("org/repo", 10, 1, None, threading.Event())
    tracker.start(0, 0, {})
    tracker.begin_file("a.bin", 0)
    tracker.advance(10)
    tracker.end_file(10)
    tracker.finish()
    assert (tracker.base, tracker.files_done) == (10, 1)
