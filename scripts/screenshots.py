"""Screenshots of the real app (run under Xvfb by `make screenshots`) into docs/screenshots/.

Captures the main window idle, mid-generation with a live preview, with a result, and the model
manager.  Steps are slowed down here (only here) so the mid-generation state can be caught.
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
    window.engine.worker.preview.connect(catcher.on_preview)
    window.engine.worker.finished.connect(catcher.on_finished)
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
    manager = getattr(window, "open_model_manager", None)
    if manager is not None:
        dialog = manager()
        pump(1.0)
        shot("model-manager.png", dialog)
        dialog.close()
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
