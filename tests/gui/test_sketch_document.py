"""The sketch document on its own (no canvas widget): the revision rule, layers, undo and redo, and the image
conversions of ``gui.images``.  Fast: 32-64 px pictures, no engine."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage

from lcm_desktop.gui.images import pil_to_qimage, qimage_to_pil, qimage_to_rgba, rgba_to_qimage
from lcm_desktop.gui.sketch_document import Brush, LayerSpec, SketchDocument

pytestmark = pytest.mark.usefixtures("qapp")
RED, GREEN = QColor(220, 30, 30), QColor(0, 160, 0)
RED_BRUSH = Brush(RED, 4)


def pixels(image) -> np.ndarray:
    return np.asarray(qimage_to_pil(image) if isinstance(image, QImage) else image.convert("RGB")).astype(int)


class Recorder:
    """The document's revision and the number of ``changed`` signals, read together."""

    def __init__(self, document: SketchDocument):
        self.document, self.signals = document, 0
        document.changed.connect(self._count)

    def _count(self):
        self.signals += 1

    def delta(self, action) -> tuple[int, int]:
        """(revisions, signals) that ``action`` caused."""
        revision, signals = self.document.revision, self.signals
        action()
        return self.document.revision - revision, self.signals - signals


def line(y: float, x0: float = 4, x1: float = 28) -> list[QPointF]:
    return [QPointF(x0, y), QPointF((x0 + x1) / 2, y), QPointF(x1, y)]


# -- the revision rule ---------------------------------------------------------------------------------------
def test_every_real_change_bumps_the_revision_once_and_emits_changed_once():
    doc = SketchDocument(32, 32)
    seen = Recorder(doc)
    assert doc.revision == 0 and doc.is_blank
    revisions, signals = seen.delta(lambda: doc.stroke(line(8), RED_BRUSH))
    assert revisions == signals == 3 and not doc.is_blank  # the dot and two segments, each drew pixels
    assert doc.undo_stack.count() == 1  # but one undo step for the whole stroke
    assert seen.delta(lambda: doc.fill(QPointF(2, 30), GREEN)) == (1, 1)
    assert seen.delta(doc.undo_stack.undo) == (1, 1)
    assert seen.delta(doc.undo_stack.redo) == (1, 1)
    assert seen.delta(doc.clear) == (1, 1) and doc.is_blank
    assert seen.delta(lambda: doc.set_image(Image.new("RGB", (32, 32), (20, 120, 200)))) == (1, 1)
    assert seen.delta(lambda: doc.set_visible("paint", False)) == (1, 1)
    assert seen.delta(lambda: doc.resize(48, 32)) == (1, 1)
    assert doc.undo_stack.count() == 0  # a new size starts the history over


def test_undo_back_to_an_earlier_state_still_counts_as_a_change():
    doc = SketchDocument(32, 32)
    doc.stroke(line(8), RED_BRUSH)
    after_stroke = doc.revision
    doc.undo_stack.undo()
    doc.undo_stack.redo()
    assert doc.revision == after_stroke + 2  # same pixels as at after_stroke, yet a new input


def test_edits_that_change_nothing_leave_no_revision_signal_or_undo_step():
    doc = SketchDocument(32, 32)
    seen = Recorder(doc)
    assert seen.delta(doc.clear) == (0, 0)  # clear paper cleared: no change
    assert seen.delta(lambda: doc.resize(32, 32)) == (0, 0)
    assert seen.delta(lambda: doc.stroke([QPointF(-20, -20), QPointF(-10, -30)], RED_BRUSH)) == (0, 0)  # outside
    assert seen.delta(lambda: doc.stroke(line(8), Brush(RED, 4, erase=True))) == (0, 0)  # nothing to erase
    assert seen.delta(lambda: doc.fill(QPointF(40, 5), GREEN)) == (0, 0)  # outside
    assert seen.delta(lambda: doc.set_visible("paint", True)) == (0, 0)  # already shown
    assert doc.undo_stack.count() == 0 and doc.is_blank
    picture = Image.new("RGB", (32, 32), (20, 120, 200))
    doc.set_image(picture)
    assert seen.delta(lambda: doc.set_image(picture)) == (0, 0)  # the picture already there
    doc.fill(QPointF(5, 5), GREEN)
    assert seen.delta(lambda: doc.fill(QPointF(5, 5), GREEN)) == (0, 0)  # the region already has that colour
    assert doc.undo_stack.count() == 2


def test_clear_after_erasing_everything_is_a_change_because_the_canvas_becomes_blank():
    doc = SketchDocument(32, 32)
    doc.stroke(line(8), RED_BRUSH)
    doc.stroke(line(8), Brush(RED, 12, erase=True))
    assert (pixels(doc.composite()) == 255).all() and not doc.is_blank  # paper again, but drawn on
    assert Recorder(doc).delta(doc.clear) == (1, 1) and doc.is_blank


# -- layers ----------------------------------------------------------------------------------------------
def test_layers_composite_strokes_over_the_picture_and_hidden_layers_stay_out():
    doc = SketchDocument(32, 32)
    doc.set_image(Image.new("RGB", (32, 32), (20, 120, 200)))
    doc.stroke(line(8), RED_BRUSH)
    px = pixels(doc.composite())
    assert tuple(px[8, 16]) == (220, 30, 30) and tuple(px[24, 16]) == (20, 120, 200)
    assert (pixels(doc.to_pil()) == px).all()
    doc.stroke(line(8), Brush(RED, 6, erase=True))  # the eraser uncovers the picture, not paper
    assert tuple(pixels(doc.composite())[8, 16]) == (20, 120, 200)
    doc.stroke(line(20), RED_BRUSH)
    doc.set_visible("paint", False)
    assert tuple(pixels(doc.composite())[20, 16]) == (20, 120, 200)
    assert tuple(pixels(doc.composite(["base", "paint"]))[20, 16]) == (220, 30, 30)  # named layers, shown or not
    assert doc.pick(QPointF(16, 20)).getRgb()[:3] == (20, 120, 200) and doc.pick(QPointF(40, 2)) is None


def test_a_layer_outside_the_picture_is_drawn_on_but_never_composited():
    doc = SketchDocument(32, 32, layers=(LayerSpec("base", opaque=True), LayerSpec("paint"),
                                         LayerSpec("mask", in_picture=False)))
    assert [layer.name for layer in doc.layers] == ["base", "paint", "mask"]
    seen = Recorder(doc)
    revisions, _ = seen.delta(lambda: doc.stroke(line(8), RED_BRUSH, layer="mask"))
    assert revisions > 0 and doc.undo_stack.count() == 1
    assert (pixels(doc.composite()) == 255).all()  # the starting picture is untouched
    assert qimage_to_rgba(doc.layer("mask").image)[8, 16, 3] == 255
    doc.undo_stack.undo()
    assert qimage_to_rgba(doc.layer("mask").image)[..., 3].max() == 0
    with pytest.raises(ValueError, match="opaque one at the bottom"):
        SketchDocument(8, 8, layers=(LayerSpec("paint"),))


def test_resize_refits_the_picture_with_the_strokes_flattened_into_it():
    from lcm_desktop.core.init_image import fit_image

    doc = SketchDocument(32, 32)
    doc.stroke(line(16, 0, 31), Brush(RED, 6))
    picture = doc.to_pil()
    doc.resize(64, 32)
    assert (doc.image_size().width(), doc.image_size().height()) == (64, 32)
    assert (pixels(doc.composite()) == pixels(fit_image(picture, 64, 32))).all()
    assert qimage_to_rgba(doc.layer("paint").image)[..., 3].max() == 0 and not doc.is_blank


# -- undo and redo ---------------------------------------------------------------------------------------
def test_undo_and_redo_restore_every_pixel_and_the_blank_flag():
    doc = SketchDocument(32, 32)
    states = [(pixels(doc.composite()), doc.is_blank)]
    doc.set_image(Image.new("RGB", (32, 32), (20, 120, 200)))
    states.append((pixels(doc.composite()), doc.is_blank))
    doc.stroke(line(8), RED_BRUSH)
    states.append((pixels(doc.composite()), doc.is_blank))
    doc.fill(QPointF(2, 30), GREEN)
    states.append((pixels(doc.composite()), doc.is_blank))
    doc.clear()
    states.append((pixels(doc.composite()), doc.is_blank))
    assert len({px.tobytes() for px, _ in states}) == 4  # paper twice (first and last), three other pictures
    for px, blank in reversed(states[:-1]):
        doc.undo_stack.undo()
        assert (pixels(doc.composite()) == px).all() and doc.is_blank == blank
    for px, blank in states[1:]:
        doc.undo_stack.redo()
        assert (pixels(doc.composite()) == px).all() and doc.is_blank == blank


def test_painting_after_an_undo_leaves_the_undo_states_as_they_were():
    doc = SketchDocument(32, 32)
    doc.stroke(line(8), RED_BRUSH)
    stroked = pixels(doc.composite())
    doc.undo_stack.undo()
    doc.undo_stack.redo()
    doc.stroke(line(20), Brush(GREEN, 4))  # paints on the layer the redo put back
    doc.undo_stack.undo()
    assert (pixels(doc.composite()) == stroked).all()
    doc.undo_stack.undo()
    doc.undo_stack.redo()  # the first stroke's "after" never saw the green one
    assert (pixels(doc.composite()) == stroked).all()


# -- without any widget ---------------------------------------------------------------------------------
def test_the_document_works_under_a_bare_qguiapplication_without_widgets():
    script = textwrap.dedent("""
        import sys
        from PySide6.QtCore import QPointF
        from PySide6.QtGui import QColor, QGuiApplication
        app = QGuiApplication([])
        from lcm_desktop.gui.sketch_document import Brush, SketchDocument
        doc = SketchDocument(16, 16)
        doc.stroke([QPointF(2, 8), QPointF(14, 8)], Brush(QColor(200, 0, 0), 3))
        doc.undo_stack.undo()
        doc.undo_stack.redo()
        print(doc.revision, doc.to_pil().getpixel((8, 8)), "PySide6.QtWidgets" in sys.modules)
    """)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                         check=True, cwd=root)
    assert out.stdout.split("\n")[0] == "4 (200, 0, 0) False"


# -- image conversions --------------------------------------------------------------------------------------
def test_conversions_round_trip_exactly_and_put_transparency_on_white():
    rgb = np.random.default_rng(0).integers(0, 256, (13, 37, 3), np.uint8)  # an odd width: padded Qt rows
    qimage = pil_to_qimage(Image.fromarray(rgb))
    assert (qimage.width(), qimage.height()) == (37, 13)
    assert (np.asarray(qimage_to_pil(qimage)) == rgb).all()
    assert (qimage_to_rgba(qimage)[..., :3] == rgb).all()
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)
    clear = rgba_to_qimage(rgba)  # transparent but for one pixel
    assert qimage_to_pil(clear).getpixel((3, 3)) == (255, 255, 255)  # on paper, not on black
    assert qimage_to_pil(clear).getpixel((0, 0)) == (10, 20, 30)
    assert pixels(pil_to_qimage(Image.fromarray(rgba, "RGBA")))[3, 3].tolist() == [255, 255, 255]
