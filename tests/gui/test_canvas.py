"""The sketch canvas and image-to-image in the window: strokes, tools, undo, live updates from the canvas,
Apply, reopening a sketch from history, strength from a dropped PNG.  Real widgets, offscreen, no sleeps."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent
from PySide6.QtWidgets import QApplication, QWidget

from lcm_desktop.gui.canvas import SketchCanvas, Tool
from lcm_desktop.gui.images import qimage_to_pil
from lcm_desktop.gui.sketch_document import fill_region
from lcm_desktop.session.state import StartMode

pytestmark = pytest.mark.usefixtures("qapp")
RED = QColor(220, 30, 30)


def _mouse(widget, kind, image_point, buttons=Qt.MouseButton.LeftButton):
    """A real mouse event at an image pixel of the canvas (mapped through its on-screen scaling)."""
    rect, size = widget.target_rect(), widget.image_size()
    pos = QPointF(rect.x() + (image_point[0] + 0.5) * rect.width() / size.width(),
                  rect.y() + (image_point[1] + 0.5) * rect.height() / size.height())
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def drag(canvas, points):
    _mouse(canvas, QEvent.Type.MouseButtonPress, points[0])
    for point in points[1:]:
        _mouse(canvas, QEvent.Type.MouseMove, point)
    _mouse(canvas, QEvent.Type.MouseButtonRelease, points[-1], Qt.MouseButton.NoButton)


def pixels(image) -> np.ndarray:
    return np.asarray(qimage_to_pil(image) if isinstance(image, QImage) else image.convert("RGB")).astype(int)


@pytest.fixture
def canvas(qtbot):
    widget = SketchCanvas(64, 64)
    qtbot.addWidget(widget)
    widget.resize(320, 320)
    widget.show()
    widget.brush_color, widget.brush_size = RED, 6
    return widget


# -- the canvas on its own -------------------------------------------------------------------------------
def test_a_mouse_stroke_paints_where_it_was_drawn_and_undo_redo_restore(canvas):
    assert canvas.is_blank and (pixels(canvas.composite()) == 255).all()
    drag(canvas, [(10, 32), (30, 32), (50, 32)])
    px = pixels(canvas.composite())
    assert tuple(px[32, 30]) == (220, 30, 30) and tuple(px[5, 5]) == (255, 255, 255)
    assert canvas.undo_stack.count() == 1 and not canvas.is_blank  # one stroke, one undo step
    canvas.undo_stack.undo()
    assert (pixels(canvas.composite()) == 255).all() and canvas.is_blank
    canvas.undo_stack.redo()
    assert tuple(pixels(canvas.composite())[32, 30]) == (220, 30, 30)


def test_eraser_uncovers_the_picture_under_the_strokes(canvas):
    photo = Image.new("RGB", (64, 64), (20, 120, 200))
    canvas.set_image(photo)
    canvas.stroke([QPointF(5, 10), QPointF(60, 10)])
    assert tuple(pixels(canvas.composite())[10, 30]) == (220, 30, 30)
    canvas.tool = Tool.ERASER
    canvas.stroke([QPointF(5, 10), QPointF(60, 10)])
    assert tuple(pixels(canvas.composite())[10, 30]) == (20, 120, 200)  # back to the photo, not to paper


def test_fill_takes_the_region_of_similar_colour_and_stops_at_edges(canvas):
    canvas.brush_size = 3
    canvas.stroke([QPointF(32, 0), QPointF(32, 63)])  # a wall down the middle
    canvas.tool, canvas.brush_color = Tool.FILL, QColor(0, 160, 0)
    _mouse(canvas, QEvent.Type.MouseButtonPress, (5, 5))
    px = pixels(canvas.composite())
    assert tuple(px[40, 5]) == (0, 160, 0) and tuple(px[40, 60]) == (255, 255, 255)
    assert canvas.undo_stack.count() == 2
    mask = fill_region(np.zeros((4, 5, 3), np.uint8), 0, 0)
    assert mask.all()


def test_clear_resets_to_paper_and_is_undoable(canvas):
    canvas.stroke([QPointF(5, 5), QPointF(40, 40)])
    canvas.clear()
    assert canvas.is_blank and (pixels(canvas.composite()) == 255).all()
    canvas.undo_stack.undo()
    assert not canvas.is_blank and tuple(pixels(canvas.composite())[20, 20]) == (220, 30, 30)


def test_a_new_size_refits_the_picture_by_the_engines_rule(canvas):
    from lcm_desktop.core.init_image import fit_image

    picture = Image.new("RGB", (64, 64), (255, 255, 255))
    picture.paste((0, 0, 255), (0, 0, 32, 64))
    canvas.set_image(picture)
    canvas.resize_canvas(128, 64)
    assert (canvas.image_size().width(), canvas.image_size().height()) == (128, 64)
    assert (pixels(canvas.composite()) == pixels(fit_image(picture, 128, 64))).all()


def _shown(widget, image_point) -> tuple[int, int, int]:
    """The colour the canvas widget shows (rendered by its paintEvent) at an image pixel."""
    rect, size = widget.target_rect(), widget.image_size()
    x = int(rect.x() + (image_point[0] + 0.5) * rect.width() / size.width())
    y = int(rect.y() + (image_point[1] + 0.5) * rect.height() / size.height())
    return widget.grab().toImage().pixelColor(x, y).getRgb()[:3]


def test_a_click_paints_a_dot_and_the_view_draws_the_visible_layers(canvas):
    revisions = []
    canvas.changed.connect(lambda: revisions.append(canvas.document.revision))
    canvas.set_image(Image.new("RGB", (64, 64), (20, 120, 200)))
    _mouse(canvas, QEvent.Type.MouseButtonPress, (20, 20))
    _mouse(canvas, QEvent.Type.MouseButtonRelease, (20, 20), Qt.MouseButton.NoButton)
    assert tuple(pixels(canvas.composite())[20, 20]) == (220, 30, 30) and canvas.undo_stack.count() == 2
    assert revisions == [1, 2]  # the canvas forwards each document change once
    assert _shown(canvas, (20, 20)) == (220, 30, 30) and _shown(canvas, (5, 5)) == (20, 120, 200)
    canvas.document.set_visible("paint", False)
    assert _shown(canvas, (20, 20)) == (20, 120, 200)


def test_a_drag_outside_the_picture_leaves_no_undo_step_and_no_change(canvas):
    changes = []
    canvas.changed.connect(lambda: changes.append(1))
    canvas.stroke([QPointF(-30, -30), QPointF(-10, -40)])
    canvas.clear()  # already clear paper
    canvas.resize_canvas(64, 64)
    assert changes == [] and canvas.undo_stack.count() == 0 and canvas.document.revision == 0


# -- in the window ------------------------------------------------------------------------------------------
def _sketch_mode(window):
    window.panel.set_mode(StartMode.SKETCH)
    canvas = window.canvas_panel.canvas
    assert window.canvas_panel.isVisible() and canvas.image_size().width() == 64
    return canvas


def test_start_modes_show_the_canvas_and_named_controls(window):
    assert window.panel.mode is StartMode.TEXT and not window.canvas_panel.isVisible()
    assert not window.panel.strength.isVisible()
    _sketch_mode(window)
    for name in ("canvasView", "strengthSlider", "initImageButton", "clearCanvasButton", "brushColorButton",
                 "brushSizeSpin", "applyResultButton", "startModeCombo"):
        widget = window.findChild(QWidget, name)
        assert widget is not None and widget.isVisible() and widget.accessibleName(), name


def test_strength_slider_says_how_many_steps_run_and_lowers_them_when_too_few_points(window):
    _sketch_mode(window)
    window.panel.steps.setValue(4)
    window.panel.strength.setValue(60)
    assert window.panel.strength_label.text() == "0.60 · 4 steps"
    window.panel.strength.setValue(6)  # 0.06 × 50 = 3 schedule points
    assert window.panel.strength_label.text() == "0.06 · 3 steps (of 4)"
    window.panel.prompt.setPlainText("a cat")
    request = window.session.to_request(Image.new("RGB", (64, 64)), window.model_info)
    assert (request.steps, request.strength) == (3, 0.06)


def test_strokes_make_a_generation_whose_request_carries_the_canvas(qtbot, window, submitted):
    canvas = _sketch_mode(window)
    canvas.brush_color = RED
    drag(canvas, [(8, 40), (30, 44), (56, 40)])
    window.panel.prompt.setPlainText("a red circle")
    with qtbot.waitSignal(window.engine.finished, timeout=30_000):
        assert window.generate()
    request = submitted[-1].request
    assert request.is_img2img and request.strength == window.panel.strength_value
    assert (pixels(request.init_image) == pixels(canvas.composite())).all()
    assert tuple(pixels(request.init_image)[42, 30]) == (220, 30, 30)
    entry = window.history.entries()[0]
    assert entry.strength == request.strength and entry.has_start
    assert (pixels(Image.open(entry.init_image)) == pixels(canvas.composite())).all()


def test_a_burst_of_strokes_during_a_live_update_runs_once_more_with_the_newest_canvas(
        qtbot, window, gate, submitted):
    canvas = _sketch_mode(window)
    window.panel.steps.setValue(2)
    window.panel.prompt.setPlainText("a red circle")
    finished = []
    window.engine.finished.connect(lambda job, out: finished.append(job))
    window.panel.live.setChecked(True)
    qtbot.waitUntil(gate.entered.is_set, timeout=30_000)
    for y in range(10, 60, 10):  # five strokes while the first update is held in its first step
        drag(canvas, [(5, y), (35, y), (60, y)])
    assert len(submitted) == 1  # nothing queued behind the one in flight
    gate.open()
    qtbot.waitUntil(lambda: len(finished) == 2 and not window.busy, timeout=30_000)
    window.panel.live.setChecked(False)
    assert len(submitted) == 2 and finished == [j.id for j in submitted]
    newest = submitted[1].request
    assert (pixels(newest.init_image) == pixels(canvas.composite())).all()  # the last stroke is in it
    assert not (pixels(submitted[0].request.init_image) == pixels(newest.init_image)).all()
    assert submitted[0].request.seed == newest.seed  # fixed seed and noise: only the input changed
    assert window.history.entries() == []


def test_apply_puts_the_result_on_the_canvas_with_a_new_seed_when_asked(qtbot, window):
    canvas = _sketch_mode(window)
    window.panel.prompt.setPlainText("a blue square")
    window.panel.seed_lock.setChecked(True)
    window.panel.seed.setValue(1234)
    with qtbot.waitSignal(window.engine.finished, timeout=30_000):
        window.generate()
    result = window.view.image
    window.canvas_panel.new_seed_check.setChecked(False)
    qtbot.mouseClick(window.canvas_panel.apply_button, Qt.MouseButton.LeftButton)
    assert (pixels(canvas.composite()) == pixels(result)).all() and window.panel.seed.value() == 1234
    canvas.undo_stack.undo()
    window.canvas_panel.new_seed_check.setChecked(True)
    qtbot.mouseClick(window.canvas_panel.apply_button, Qt.MouseButton.LeftButton)
    assert (pixels(canvas.composite()) == pixels(result)).all() and window.panel.seed.value() != 1234


def test_colour_picker_takes_a_colour_from_the_result(qtbot, window):
    canvas = _sketch_mode(window)
    window.view.show_image(pixels_image((10, 200, 90)))
    window.canvas_panel.set_tool(Tool.PICKER)
    qtbot.mouseClick(window.view, Qt.MouseButton.LeftButton, pos=window.view.rect().center())
    assert canvas.brush_color.getRgb()[:3] == (10, 200, 90)
    assert window.canvas_panel.color_button.toolTip().startswith("Brush colour #0ac85a")


def pixels_image(rgb) -> QImage:
    image = QImage(64, 64, QImage.Format.Format_RGB32)
    image.fill(QColor(*rgb))
    return image


def test_reopening_a_history_item_brings_back_its_sketch_and_strength(qtbot, window):
    canvas = _sketch_mode(window)
    canvas.stroke([QPointF(10, 10), QPointF(50, 50)])
    sketch = pixels(canvas.composite())
    window.panel.strength.setValue(70)
    window.panel.prompt.setPlainText("a red circle, top left")
    with qtbot.waitSignal(window.engine.finished, timeout=30_000):
        window.generate()
    canvas.clear()
    window.session.update(prompt="other", strength=0.3)
    window.panel.set_mode(StartMode.TEXT)
    item = window.gallery.item(0)
    menu = window.gallery.menu(item)
    reopen = next(a for a in menu.actions() if a.text().startswith("Reopen"))
    assert reopen.isEnabled()
    reopen.trigger()
    assert window.panel.mode is StartMode.SKETCH and window.panel.strength_value == 0.7
    assert window.panel.prompt.toPlainText() == "a red circle, top left"
    assert (pixels(canvas.composite()) == sketch).all()


def test_dropping_an_img2img_png_restores_its_strength(qtbot, window, tmp_path):
    from lcm_desktop.core.metadata import ImageParameters, save_png

    params = ImageParameters(prompt="a cat", steps=4, guidance_scale=8.0, seed=5, width=64, height=64,
                             strength=0.35)
    save_png(Image.new("RGB", (64, 64)), tmp_path / "i2i.png", params)
    assert window.actions.restore_from_png(tmp_path / "i2i.png")
    assert window.panel.strength_value == 0.35


def test_paste_and_use_as_input_put_a_picture_on_the_canvas(qtbot, window):
    QApplication.clipboard().setImage(pixels_image((200, 100, 0)))
    assert window.start.paste()
    canvas = window.canvas_panel.canvas
    assert window.panel.mode is StartMode.IMAGE and tuple(pixels(canvas.composite())[5, 5]) == (200, 100, 0)
    window.panel.prompt.setPlainText("a green circle")
    with qtbot.waitSignal(window.engine.finished, timeout=30_000):
        window.generate()
    window.start.use_result()
    assert (pixels(canvas.composite()) == pixels(window.view.image)).all()


def test_image_mode_without_a_picture_is_one_clear_line(window):
    window.panel.set_mode(StartMode.IMAGE)
    window.panel.prompt.setPlainText("a cat")
    assert window.generate() is False
    assert "canvas" in window.last_error and "\n" not in window.last_error


def test_tool_keys_do_not_fire_while_typing_a_prompt(qtbot, window):
    _sketch_mode(window)
    window.panel.prompt.setFocus()
    qtbot.keyClicks(window.panel.prompt, "bef")
    assert window.panel.prompt.toPlainText().endswith("bef")
    assert window.canvas_panel.canvas.tool is Tool.BRUSH


def test_window_stays_responsive_while_painting_during_live_updates(qtbot, window, ticks, unet_threads):
    """Strokes arrive from a timer (as a mouse would) while live updates run on the engine thread: no UNet call
    on the GUI thread, and long gaps between the timer's ticks take under half the time (see ``Ticks``)."""
    canvas = _sketch_mode(window)
    window.panel.steps.setValue(4)
    window.panel.prompt.setPlainText("a yellow triangle")
    with qtbot.waitSignal(window.engine.finished, timeout=30_000):
        window.generate()  # the model is loaded before measuring
    finished = []
    window.engine.finished.connect(lambda job, out: finished.append(job))
    window.panel.live.setChecked(True)
    step = [0]

    def paint():
        x = step[0] % 60
        if x == 0:
            _mouse(canvas, QEvent.Type.MouseButtonPress, (2, 5 + step[0] // 60 % 50))
        _mouse(canvas, QEvent.Type.MouseMove, (2 + x, 5 + step[0] // 60 % 50))
        if x == 59:
            _mouse(canvas, QEvent.Type.MouseButtonRelease, (61, 5), Qt.MouseButton.NoButton)
        step[0] += 1

    timer = ticks(on_tick=paint)
    timer.start()
    qtbot.waitUntil(lambda: len(finished) >= 3, timeout=60_000)
    timer.stop()
    window.panel.live.setChecked(False)
    qtbot.waitUntil(lambda: not window.busy, timeout=30_000)
    assert step[0] > 20 and len(timer.gaps) > 20
    assert len(unet_threads) >= 4 and not any(unet_threads)  # the first image and three live updates
    assert timer.stalled_share < 0.5, f"event loop stalled {timer.stalled_share:.0%} of {timer.span:.2f} s"


def test_ctrl_v_in_the_prompt_pastes_text_not_a_picture(qtbot, window):
    QApplication.clipboard().setText("a purple square")
    window.panel.prompt.clear()
    window.panel.prompt.setFocus()
    qtbot.keyClick(window.panel.prompt, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert window.panel.prompt.toPlainText() == "a purple square"
    assert window.panel.mode is StartMode.TEXT and window.canvas_panel.canvas.is_blank


def test_deleting_an_image_deletes_its_start_copy_once_no_row_names_it(qtbot, window, monkeypatch):
    from pathlib import Path

    from PySide6.QtCore import QFile

    trashed = []
    monkeypatch.setattr(QFile, "moveToTrash", lambda path: trashed.append(Path(path)) or True)  # not the real Trash
    canvas = _sketch_mode(window)
    canvas.stroke([QPointF(10, 10), QPointF(50, 50)])
    window.panel.prompt.setPlainText("a red circle")
    window.panel.batch.setValue(2)  # two rows, one start copy
    with qtbot.waitSignal(window.engine.finished, timeout=30_000):
        window.generate()
    first, second = window.history.entries()
    start = first.init_image
    assert start == second.init_image and start.parent == window.paths.starts and start.is_file()
    for _ in range(2):
        window.gallery.setCurrentRow(0)
        window.actions.delete_selected()
        assert start.is_file() == bool(window.history.entries())  # kept while a row still names it
    assert sorted(trashed) == sorted([first.path, second.path])
