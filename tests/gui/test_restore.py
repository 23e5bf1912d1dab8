"""Every restore path (history item, reopen with its picture, a dropped PNG, the last session) brings back the
same fields, through the session's one mapping, and the widgets show them."""

from __future__ import annotations

import pytest
from PIL import Image

from lcm_desktop.core.paths import AppPaths
from lcm_desktop.gui.app import create_window
from lcm_desktop.session.state import StartMode

pytestmark = pytest.mark.usefixtures("qapp")


def _fields(window):
    s, p = window.session, window.panel
    shown = (p.prompt.toPlainText(), p.negative.toPlainText(), p.steps.value(), round(p.guidance.value(), 2),
             p.seed.value(), p.size.currentData(), p.strength.value() / 100)
    return (s.prompt, s.negative_prompt, s.steps, s.guidance_scale, s.seed, s.size, s.strength), shown


@pytest.fixture
def made(qtbot, window):
    """One image-to-image picture made at settings unlike the defaults; then the inputs are scrambled."""
    window.canvas_panel.canvas.set_image(Image.new("RGB", (64, 64), (30, 90, 200)))
    window.session.update(prompt="a red circle", steps=3, guidance_scale=7.0, seed=4242, seed_locked=True,
                          start_mode=StartMode.IMAGE, strength=0.5)
    with qtbot.waitSignal(window.engine.finished, timeout=30_000) as done:
        assert window.generate()
    expected = _fields(window)
    assert expected[0] == expected[1]  # the widgets show what the session holds
    window.session.update(prompt="other", steps=6, guidance_scale=2.0, seed=1, strength=0.9,
                          start_mode=StartMode.TEXT)
    return done.args[1].paths[0], expected


def test_history_restore_and_reopen_bring_back_the_same_fields(window, made):
    path, expected = made
    entry = window.history.entries()[0]
    window.actions.restore_entry(entry)
    assert _fields(window) == expected and window.session.start_mode is StartMode.IMAGE
    window.session.update(prompt="other", steps=6, seed=1, start_mode=StartMode.TEXT)
    window.start.reopen(entry)
    assert _fields(window) == expected and window.session.start_mode is StartMode.SKETCH
    assert window.canvas_panel.isVisible() and not window.canvas_panel.canvas.is_blank


def test_a_dropped_png_brings_back_the_same_fields(window, made):
    path, expected = made
    assert window.actions.restore_from_png(path)
    assert _fields(window) == expected


def test_the_last_session_comes_back_after_a_restart(qtbot, window, made, tiny_lcm):
    window.session.update(prompt="kept for next time", steps=5, strength=0.35, start_mode=StartMode.SKETCH)
    window.close()
    again = create_window(model=tiny_lcm, paths=AppPaths.default())
    qtbot.addWidget(again)
    s = again.session
    assert (s.prompt, s.steps, s.strength, s.start_mode) == ("kept for next time", 5, 0.35, StartMode.SKETCH)
    assert again.panel.prompt.toPlainText() == "kept for next time" and again.panel.steps.value() == 5
    again.close()


def test_an_edit_that_changes_nothing_starts_no_live_update(qtbot, window, gate, submitted):
    window.session.prompt = "a red circle"
    window.session.live = True
    qtbot.waitUntil(lambda: gate.entered.is_set(), timeout=30_000)  # the first live job is held in the UNet
    window.panel.prompt.setPlainText("a red circles")  # typed a letter and deleted it while it ran
    window.panel.prompt.setPlainText("a red circle")
    window.session.steps = window.session.steps  # a no-op edit
    window.canvas_panel.canvas.clear()  # an already clear canvas (and in Text mode the canvas is no input)
    gate.open()
    qtbot.waitUntil(lambda: submitted[0].wait(0) and window.engine.queue.idle, timeout=30_000)
    qtbot.wait(100)  # the timer would have fired by now
    window.session.live = False
    assert [job.request.prompt for job in submitted] == ["a red circle"]  # the same input: no second job


def test_the_sampler_list_shows_what_the_model_can_run_and_picking_one_sets_its_steps(qtbot, window):
    combo = window.panel.sampler
    names = [combo.itemData(i) for i in range(combo.count())]
    assert names == ["", "tcd", "hyper-sd", "ddim-trailing"]  # its own (LCM) first, then its family's
    assert "LCM" in combo.itemText(0) and not window.panel.eta.isVisible()
    combo.setCurrentIndex(names.index("hyper-sd"))
    combo.activated.emit(combo.currentIndex())  # what a user's pick sends
    assert window.session.sampler == "hyper-sd" and window.session.steps == 1
    assert window.panel.eta.isVisible() and window.panel.eta.value() == 1.0  # Hyper-SD's TCD eta
    window.session.prompt = "a red circle"
    request = window.session.to_request(None, window.model_info)
    assert (request.sampler, request.steps, request.eta) == ("hyper-sd", 1, None)  # None: the preset's eta
