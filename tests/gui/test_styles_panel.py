"""The Styles panel in the window: import, weights into the request, live reacting to a weight, family
checks, Core ML models, restoring styles from a PNG and from history, prompt highlighting."""

from __future__ import annotations

import pytest
import tiny_models
from PySide6.QtWidgets import QWidget

from lcm_desktop.core.metadata import read_png_parameters
from lcm_desktop.core.request import LoraWeight

pytestmark = pytest.mark.usefixtures("qapp")


@pytest.fixture(scope="module")
def style_file(tiny_lcm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("downloads")
    made = tiny_models.make_tiny_style(tiny_lcm, folder / "made.safetensors", seed=1)
    return tiny_models.to_kohya(made, folder / "papercut.safetensors")


@pytest.fixture(scope="module")
def sdxl_style(tiny_sdxl, tmp_path_factory):
    return tiny_models.make_tiny_style(tiny_sdxl, tmp_path_factory.mktemp("xl") / "xl-ink.safetensors", seed=3)


def _row(window, name):
    return window.styles.rows[name]


def test_import_check_and_weigh_a_style_and_the_request_carries_it(qtbot, window, style_file, tmp_path):
    assert window.findChild(QWidget, "stylesPanel").isVisible() and list(window.styles.rows) == ["huge"]
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    messages = []
    window.styles.message.connect(messages.append)
    assert not window.styles.import_file(bad)
    assert "\n" not in messages[-1] and "notes.txt" in messages[-1]
    assert window.styles.import_file(style_file)
    row = _row(window, "papercut")
    assert "SD1.5" in row.toolTip() and row.isEnabled() and list(window.styles.rows) == ["papercut", "huge"]
    window.panel.prompt.setPlainText("a red circle")
    assert window.session.to_request(None, window.model_info).loras == ()
    row.check.setChecked(True)
    row.set_weight(0.65)
    assert window.styles.loras() == (LoraWeight("papercut", 0.65),)
    with qtbot.waitSignal(window.engine.finished, timeout=30_000) as done:
        assert window.generate()
    output = done.args[1]
    assert output.result.request.loras == (LoraWeight("papercut", 0.65),)
    assert read_png_parameters(output.paths[0]).loras == (LoraWeight("papercut", 0.65),)
    assert window.history.entries()[0].loras == (("papercut", 0.65),)


def test_a_weight_change_makes_a_live_update(qtbot, window, style_file, submitted):
    window.styles.import_file(style_file)
    window.panel.prompt.setPlainText("a red circle")
    row = _row(window, "papercut")
    row.check.setChecked(True)
    finished = []
    window.engine.finished.connect(lambda job, out: finished.append(job))
    window.panel.live.setChecked(True)
    qtbot.waitUntil(lambda: len(finished) == 1 and not window.busy, timeout=30_000)
    row.set_weight(-0.5)
    qtbot.waitUntil(lambda: len(finished) == 2 and not window.busy, timeout=30_000)
    window.panel.live.setChecked(False)
    assert [j.request.loras for j in submitted] == [(LoraWeight("papercut", 1.0),), (LoraWeight("papercut", -0.5),)]


def test_a_style_for_another_family_is_listed_but_disabled(window, sdxl_style):
    window.styles.import_file(sdxl_style)
    row = _row(window, "xl-ink")
    assert not row.isEnabled() and "SDXL" in row.toolTip()
    row.check.setChecked(True)
    assert window.styles.loras() == ()


def test_dropping_a_png_restores_its_styles_and_names_the_missing_ones(qtbot, window, style_file, tmp_path):
    from PIL import Image

    from lcm_desktop.core.metadata import ImageParameters, save_png

    window.styles.import_file(style_file)
    params = ImageParameters(prompt="a cat <lora:ghost:0.4>", steps=4, guidance_scale=8.0, seed=5, width=64,
                             height=64, loras=(LoraWeight("papercut", 1.3), LoraWeight("gone", 0.5)))
    save_png(Image.new("RGB", (64, 64)), tmp_path / "styled.png", params)
    assert window.actions.restore_from_png(tmp_path / "styled.png")
    assert window.styles.loras() == (LoraWeight("papercut", 1.3),)
    message = window.statusBar().currentMessage()
    assert "styles not installed: gone, ghost" in message


def test_reopening_history_restores_its_styles(qtbot, window, style_file):
    window.styles.import_file(style_file)
    _row(window, "papercut").check.setChecked(True)
    _row(window, "papercut").set_weight(0.8)
    window.panel.prompt.setPlainText("a red circle")
    with qtbot.waitSignal(window.engine.finished, timeout=30_000):
        window.generate()
    _row(window, "papercut").check.setChecked(False)
    window.actions.restore_entry(window.history.entries()[0])
    assert window.styles.loras() == (LoraWeight("papercut", 0.8),)


def test_the_prompt_shows_tags_emphasis_and_break_in_colour(window):
    window.panel.prompt.setPlainText("a (red:1.3) cat <lora:ink:0.5> BREAK moon")
    formats = window.panel.prompt.document().firstBlock().layout().formats()
    coloured = {(f.start, f.length) for f in formats}
    text = window.panel.prompt.toPlainText()
    assert (text.index("<lora"), len("<lora:ink:0.5>")) in coloured
    assert (text.index("BREAK"), 5) in coloured and (text.index("("), 1) in coloured


def test_a_core_ml_model_lists_its_baked_styles_and_takes_no_live_ones(window, style_file):
    from dataclasses import replace

    from lcm_desktop.core.model_info import ModelKind

    window.styles.import_file(style_file)
    _row(window, "papercut").check.setChecked(True)
    info = replace(window.model_info, kind=ModelKind.COREML, baked_styles=(("papercut", 0.8),))
    window.styles.set_model(info)
    assert window.styles.baked.isVisible() and "papercut 0.8" in window.styles.baked.text()
    assert window.styles.loras() == ()
    window.styles.set_model(window.model_info)
    assert not window.styles.baked.isVisible() and window.styles.loras() == (LoraWeight("papercut", 1.0),)


def test_the_built_in_style_is_offered_and_changes_the_picture(qtbot, window):
    """resources/styles/huge (trained here with LCF, docs/STYLES.md) on the built-in model."""
    from lcm_desktop.core.paths import builtin_model_path

    window.panel.model.setCurrentIndex(window.panel.model.findData(str(builtin_model_path())))
    row = _row(window, "huge")
    assert row.isEnabled() and "built in" in row.toolTip() and "huge" in row.toolTip()
    window.panel.prompt.setPlainText("a small red circle on a blue background, top left")
    window.panel.seed_lock.setChecked(True)
    images = []
    for on in (False, True):
        row.check.setChecked(on)
        with qtbot.waitSignal(window.engine.finished, timeout=60_000) as done:
            window.generate()
        images.append(done.args[1].images[0])
    assert images[0] != images[1]


def test_new_style_opens_the_training_dialog_on_the_selected_model(qtbot, window, tiny_lcm):
    dialog = window.styles.train_new()
    qtbot.addWidget(dialog)
    assert dialog.objectName() == "trainStyleDialog" and dialog.model == tiny_lcm
    dialog.close()
