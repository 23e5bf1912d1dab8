"""Screenshots of the real app (run under Xvfb by `make screenshots`) into docs/screenshots/.

Captures the main window idle, mid-generation with a live preview, with a result, the sketch canvas
with Live on (a rough sketch on the left, its picture on the right), and the model manager.  Steps are
slowed down here (only here) so the mid-generation state can be caught.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--prompt", default="a large yellow circle on a green background, top left")
    parser.add_argument("--only-layers", action="store_true", help="only the Lines and Mask layer shots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LCM_DESKTOP_HOME", tempfile.mkdtemp(prefix="lcm-shots-"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from PySide6.QtCore import QObject, QTimer, Slot
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QApplication

    from lcm_desktop.engine.torch_backend import TorchDenoiser
    from lcm_desktop.gui.app import create_window

    app = QApplication(sys.argv[:1])
    app.setApplicationName("LCM Desktop")
    window = create_window(args.model)
    window.resize(1180, 780)
    window.show()
    state = {"preview": False}

    def pump(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)

    def shot(name: str, widget=None) -> None:
        pump(0.3)
        (widget or window).grab().save(str(args.out / name))
        print(args.out / name)

    pump(1.0)
    if args.only_layers:
        layers_live(window, pump, shot, {"flag": False})
        window.close()
        return 0
    shot("main-idle.png")

    real_call = TorchDenoiser.__call__

    def slow_call(self, *a, **k):
        time.sleep(0.6)
        return real_call(self, *a, **k)

    TorchDenoiser.__call__ = slow_call
    window.panel.prompt.setPlainText(args.prompt)
    window.panel.steps.setValue(6)
    window.panel.seed.setValue(7)
    window.panel.seed_lock.setChecked(True)

    done = {"flag": False}

    class Catcher(QObject):  # lives in the GUI thread, so its slots run there (queued)
        @Slot(int, QImage)
        def on_preview(self, job, image):
            if not state["preview"]:
                state["preview"] = True
                QTimer.singleShot(50, lambda: shot("main-generating.png"))

        @Slot(int, object)
        def on_finished(self, job, output):
            done["flag"] = True

    catcher = Catcher()
    window.engine.preview.connect(catcher.on_preview)
    window.engine.finished.connect(catcher.on_finished)
    window.generate()
    deadline = time.perf_counter() + 120
    while not done["flag"] and time.perf_counter() < deadline:
        pump(0.05)
    TorchDenoiser.__call__ = real_call
    window.panel.seed_lock.setChecked(False)
    for _ in range(3):  # a few more for the gallery strip
        done["flag"] = False
        window.generate()
        while not done["flag"] and time.perf_counter() < deadline:
            pump(0.05)
    shot("main-result.png")
    sketch_live(window, pump, shot, done)
    layers_live(window, pump, shot, done)
    manager = getattr(window, "open_model_manager", None)
    if manager is not None:
        dialog = manager()
        pump(1.0)
        shot("model-manager.png", dialog)
        dialog.close()
    window.close()
    return 0


def sketch_live(window, pump, shot, done) -> None:
    """Live on, a rough red blob painted stroke by stroke on blue paper, bottom right; shot once the picture
    has followed."""
    import math

    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QColor

    from lcm_desktop.gui.canvas import Tool
    from lcm_desktop.session.state import StartMode

    window.resize(1400, 820)
    window.panel.set_mode(StartMode.SKETCH)
    canvas = window.canvas_panel.canvas
    window.panel.prompt.setPlainText("a large red circle on a blue background, bottom right")
    window.panel.steps.setValue(4)
    window.panel.strength.setValue(75)
    canvas.tool, canvas.brush_color = Tool.FILL, QColor(40, 80, 200)
    canvas.fill(QPointF(2, 2))
    window.canvas_panel.set_tool(Tool.BRUSH)
    canvas.brush_color = QColor(205, 45, 40)
    window.panel.live.setChecked(True)
    for radius in (3, 7, 10):  # a wobbly blob, ring by ring, as a hand would draw it
        ring = [QPointF(44 + radius * math.cos(a / 6) * (1 + 0.25 * math.sin(a / 2)),
                        46 + radius * math.sin(a / 6) * (1 + 0.2 * math.cos(a / 3))) for a in range(0, 40)]
        canvas.stroke(ring)
        pump(0.4)
    done["flag"] = False
    deadline = time.perf_counter() + 60
    while (window.busy or not done["flag"]) and time.perf_counter() < deadline:
        pump(0.05)
    shot("main-sketch-live.png")
    window.panel.live.setChecked(False)


def _wait_live(window, pump, done) -> None:
    from PySide6.QtCore import QObject, Slot

    class Catcher(QObject):
        @Slot(int, object)
        def on_ended(self, *args):
            done["flag"] = True

    catcher = Catcher()
    window.engine.ended.connect(catcher.on_ended)
    done["flag"] = False
    deadline = time.perf_counter() + 60
    pump(0.5)
    while (window.busy or not done["flag"]) and time.perf_counter() < deadline:
        pump(0.05)
    pump(0.5)
    window.engine.ended.disconnect(catcher.on_ended)


def layers_live(window, pump, shot, done) -> None:
    """The sketch's overlay layers, live on the built-in model: a ring drawn on the Lines layer in Text mode
    steering where the circle goes (its own scribble control), then a mask painted over part of that picture
    repainting only there."""
    import math

    from PySide6.QtCore import QPointF

    from lcm_desktop.session.state import StartMode

    window.resize(1400, 860)
    canvas, tools = window.canvas_panel.canvas, window.layers.tools
    window.panel.set_mode(StartMode.TEXT)
    window.panel.steps.setValue(4)
    window.panel.seed.setValue(11)
    window.panel.seed_lock.setChecked(True)
    window.layers.control.enable.setChecked(True)
    canvas.clear()
    tools.lines_button.setChecked(True)
    window.canvas_panel.set_brush_size(3)
    window.panel.prompt.setPlainText("a large red circle on a blue background")
    window.panel.live.setChecked(True)
    ring = [QPointF(20 + 13 * math.cos(a / 8), 22 + 13 * math.sin(a / 8)) for a in range(0, 52)]
    canvas.stroke(ring)
    _wait_live(window, pump, done)
    shot("main-lines-live.png")

    window.panel.live.setChecked(False)
    window.start.use_result()  # that picture becomes the start (Image mode)
    tools.lines_shown.setChecked(False)
    window.layers.control.enable.setChecked(False)
    tools.mask_button.setChecked(True)
    window.canvas_panel.set_brush_size(14)
    window.panel.prompt.setPlainText("a large yellow square on a green background")
    window.panel.live.setChecked(True)
    canvas.stroke([QPointF(40, 40), QPointF(52, 44), QPointF(46, 54), QPointF(54, 54)])
    _wait_live(window, pump, done)
    shot("main-mask-live.png")
    window.panel.live.setChecked(False)


if __name__ == "__main__":
    raise SystemExit(main())
