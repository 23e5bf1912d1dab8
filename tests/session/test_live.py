"""The live scheduler's rule, driven with numbers for the time (no sleeps) and keyed on the input itself."""

from __future__ import annotations

import pytest

from lcm_desktop.session.live import GRACE_S, MAX_WAIT_S, LiveScheduler


def test_fast_generations_start_at_once_and_never_overlap():
    s = LiveScheduler()
    assert s.wait(0.0) is None  # nothing edited
    s.edited(0.0, "a")
    assert s.wait(0.0) == 0.0
    s.started("a")
    for t, key in ((0.1, "ab"), (0.2, "abc"), (0.3, "abcd")):  # a burst of edits while one runs: nothing starts
        s.edited(t, key)
        assert s.wait(t, idle=False) is None
    s.ended(0.4)
    assert s.pending and s.wait(0.5) == 0.0  # the newest input goes next, once
    s.started("abcd")
    s.ended(0.4)
    assert not s.pending and s.wait(1.0) is None  # nothing changed since: no repeat


def test_an_edit_that_changes_nothing_starts_nothing():
    s = LiveScheduler()
    assert s.edited(0.0, ("a red circle", 3))
    s.started(("a red circle", 3))
    s.ended(0.2)
    assert not s.edited(0.5, ("a red circle", 3))  # the same input
    assert s.wait(0.5) is None
    assert s.edited(0.55, ("a red circles", 3)) and not s.edited(0.56, ("a red circle", 3))  # typed, deleted
    assert s.wait(0.57) is None
    assert s.edited(0.6, ("a red circle", 4))  # the sketch's revision moved
    assert s.wait(0.6) == 0.0


def test_slow_generations_wait_for_a_pause_in_editing_but_not_forever():
    s = LiveScheduler()
    s.ended(2.0)  # one generation took 2 s: slow (average above 1.5 s)
    assert s.slow
    s.edited(10.0)
    assert s.wait(10.0) == pytest.approx(GRACE_S)
    s.edited(10.2)  # still editing: the grace restarts from the last edit
    assert s.wait(10.2) == pytest.approx(GRACE_S)
    assert s.wait(10.2 + GRACE_S) == 0.0
    for t in range(1, 40):  # editing without a pause: at most MAX_WAIT_S after the first unprocessed edit
        s.edited(10.0 + t * 0.1)
    assert s.wait(10.0 + MAX_WAIT_S) == 0.0


def test_the_average_of_recent_generations_decides_and_failures_do_not_count():
    s = LiveScheduler()
    s.ended(3.0)
    for _ in range(10):
        s.ended(0.2)  # ten fast ones push the slow one out of the window
    assert not s.slow
    s.ended(None)  # a cancelled or failed one
    assert not s.slow


def test_reset_forgets_unprocessed_edits_and_the_last_input():
    s = LiveScheduler()
    s.edited(0.0, "a")
    s.started("a")
    s.edited(0.1, "b")
    s.reset()
    assert s.wait(0.2) is None
    assert s.edited(0.3, "a")  # switched on again: the same input regenerates
