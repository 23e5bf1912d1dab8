"""The sketch's Lines and Mask layers in the window: strokes on them reach the request (a scribble control, an
inpainting mask), and a masked generation changes only the masked area of the saved picture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QCheckBox, QComboBox, QPushButton, QSlider, QSpinBox, QToolButton

from lcm_desktop.core.control import Preprocess
from lcm_desktop.core.mask import Inpaint
from lcm_desktop.session.state import StartMode

pytestmark = pytest.mark.usefixtures("qapp")


def _widget(window, kind, name):
    widget = window.findChild(kind, name)
    assert widget is not None, name
    return widget


def _stroke(window, points):
    window.canvas_panel.canvas.stroke([QPointF(x, y) for x, y in points])


def test_lines_strokes_make_a_request_with_a_white_on_black_control(qtbot, window, tmp_path):
    window.session.update(prompt="a large red circle", control_model=str(tmp_path))  # a folder: taken as it is
    revision = window.canvas_panel.canvas.document.revision
    assert not window.canvas_panel.isVisible()  # Text mode …
    _widget(window, QCheckBox, "controlEnableCheck").click()
    assert window.session.control_enabled and window.canvas_panel.isVisible()  # … the canvas shows: it steers
    _widget(window, QToolButton, "linesLayerButton").click()
    assert window.canvas_panel.canvas.layer == "lines"
    window.canvas_panel.set_brush_size(4)
    _stroke(window, [(10, 32), (54, 32)])
    assert window.canvas_panel.canvas.document.revision > revision
    assert window.canvas_panel.canvas.to_pil().getpixel((32, 32)) == window.canvas_panel.canvas.to_pil().getpixel(
        (5, 5))  # the lines are not part of the picture
    _widget(window, QSlider, "controlScaleSlider").setValue(150)
    request = window.session.to_request(window.start.init_image(), window.model_info, **window.layers.images())
    assert request.init_image is None and len(request.controls) == 1  # text-to-image with a control
    control = request.controls[0]
    assert (control.model, control.scale, control.preprocess) == (tmp_path, 1.5, Preprocess.NONE)
    pixels = np.asarray(control.image.convert("L"))
    assert pixels[32, 32] == 255 and pixels[5, 5] == 0 and pixels[32, 5] == 0  # white lines on black
    assert _widget(window, QComboBox, "controlModelCombo").count() >= 1
    _widget(window, QCheckBox, "linesVisibleCheck").setChecked(False)  # hidden lines do not steer
    assert window.session.to_request(None, window.model_info, **window.layers.images()).controls == ()
    _widget(window, QCheckBox, "linesVisibleCheck").setChecked(True)
    window.canvas_panel.canvas.document.clear_layer("lines")
    assert window.session.to_request(None, window.model_info, **window.layers.images()).controls == ()


def test_a_control_without_a_control_model_is_one_clear_line(window):
    from lcm_desktop.core.errors import InvalidRequestError

    window.session.update(prompt="a circle", control_enabled=True)
    window.canvas_panel.canvas.layer = "lines"
    _stroke(window, [(10, 10), (40, 40)])
    assert window.model_info.default_control is None
    with pytest.raises(InvalidRequestError, match="control model"):
        window.session.to_request(None, window.model_info, **window.layers.images())


def test_mask_strokes_repaint_only_the_masked_area(qtbot, window):
    start = Image.new("RGB", (64, 64), (30, 90, 200))
    window.canvas_panel.canvas.set_image(start)
    window.session.update(prompt="a red circle", steps=2, seed=7, seed_locked=True, start_mode=StartMode.IMAGE,
                          strength=0.3)
    _widget(window, QToolButton, "maskLayerButton").click()
    assert window.canvas_panel.canvas.layer == "mask"
    _widget(window, QSpinBox, "maskBlurSpin").setValue(0)
    window.canvas_panel.canvas.brush_size = 16
    _stroke(window, [(20, 32), (44, 32)])  # a band across the middle
    document = window.canvas_panel.canvas.document
    drawn = np.asarray(document.coverage("mask")) > 0
    _widget(window, QToolButton, "invertMaskButton").click()
    assert ((np.asarray(document.coverage("mask")) > 0) == ~drawn).all()  # Invert: the complement …
    _widget(window, QToolButton, "invertMaskButton").click()  # … and back
    assert window.canvas_panel.canvas.to_pil().getpixel((32, 32)) == (30, 90, 200)  # the mask is not the picture
    request = window.session.to_request(window.start.init_image(), window.model_info, **window.layers.images())
    assert isinstance(request.inpaint, Inpaint) and request.inpaint.blur == 0 and request.strength == 1.0
    mask = np.asarray(request.inpaint.mask) > 0
    assert mask[32, 32] and not mask[2, 2] and 0.1 < mask.mean() < 0.9
    with qtbot.waitSignal(window.engine.finished, timeout=30_000) as done:
        assert window.generate()
    saved = np.asarray(Image.open(done.args[1].paths[0]).convert("RGB")).astype(int)
    original = np.asarray(start).astype(int)
    assert (saved[~mask] == original[~mask]).all()  # outside the mask: the start picture, exactly
    assert np.abs(saved[mask] - original[mask]).max() > 10  # inside: repainted


def test_extend_canvas_grows_it_and_masks_the_border(window):
    window.canvas_panel.canvas.set_image(Image.new("RGB", (64, 64), (30, 90, 200)))
    window.layers.tools.extend(16)
    assert window.session.size == (96, 96) and window.session.is_img2img
    mask = np.asarray(window.canvas_panel.canvas.document.coverage("mask")) > 0
    assert mask.shape == (96, 96) and mask[0, 0] and mask[95, 95] and not mask[48, 48]
    assert window.canvas_panel.canvas.to_pil().getpixel((48, 48)) == (30, 90, 200)
    assert _widget(window, QToolButton, "extendCanvasButton").menu() is not None
    window.session.prompt = "a red circle"
    request = window.session.to_request(window.start.init_image(), window.model_info, **window.layers.images())
    assert (request.width, request.height) == (96, 96) and request.inpaint.mask.size == (96, 96)


def test_edges_from_picture_adds_a_canny_control_of_the_canvas(window, tmp_path):
    window.canvas_panel.canvas.set_image(Image.new("RGB", (64, 64), (30, 90, 200)))
    window.session.update(prompt="a circle", control_model=str(tmp_path), start_mode=StartMode.SKETCH)
    _widget(window, QCheckBox, "controlEnableCheck").click()
    _widget(window, QPushButton, "edgesFromPictureButton").click()
    request = window.session.to_request(window.start.init_image(), window.model_info, **window.layers.images())
    assert [c.preprocess for c in request.controls] == [Preprocess.CANNY]
    assert request.controls[0].image.getpixel((5, 5)) == (30, 90, 200)


def test_a_png_with_a_control_restores_its_scale():
    from lcm_desktop.core.control import ControlRecord
    from lcm_desktop.core.metadata import ImageParameters
    from lcm_desktop.session.state import Session

    session = Session()
    session.restore(ImageParameters(prompt="p", controls=(ControlRecord("lcm-demo-scribble", scale=0.7),)))
    assert session.control_scale == 0.7


def test_the_mask_is_kept_with_the_history_item_and_reopened(qtbot, window):
    window.canvas_panel.canvas.set_image(Image.new("RGB", (64, 64), (30, 90, 200)))
    window.session.update(prompt="a red circle", steps=2, seed=3, seed_locked=True, start_mode=StartMode.IMAGE)
    window.canvas_panel.canvas.layer, window.canvas_panel.canvas.brush_size = "mask", 12
    _stroke(window, [(10, 50), (30, 50)])
    drawn = np.asarray(window.canvas_panel.canvas.document.coverage("mask")) > 0
    with qtbot.waitSignal(window.engine.finished, timeout=30_000):
        assert window.generate()
    entry = window.history.entries()[0]
    assert entry.mask is not None and entry.mask.name == entry.init_image.stem + "-mask.png"
    window.canvas_panel.canvas.document.clear_layer("mask")
    window.start.reopen(entry)
    assert ((np.asarray(window.canvas_panel.canvas.document.coverage("mask")) > 0) == drawn).all()
