"""The real window, offscreen, driven by objectName with qtbot."""

from __future__ import annotations

import shutil
import sys
import threading
import time

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QMessageBox

from lcm_desktop.core.metadata import read_png_parameters
from lcm_desktop.core.paths import AppPaths
from lcm_desktop.gui.app import create_window

pytestmark = pytest.mark.usefixtures("qapp")


@pytest.fixture
def window(qtbot, tiny_lcm):
    win = create_window(model=tiny_lcm, paths=AppPaths.default())
    qtbot.addWidget(win)
    win.show()
    yield win
    if win.isVisible():
        win.close()


def _find(win, cls, name):
    widget = win.findChild(cls, name)
    assert widget is not None, name
    return widget


def _generate(qtbot, win, prompt="a red circle", timeout=30_000):
    from PySide6.QtWidgets import QPlainTextEdit, QPushButton

    _find(win, QPlainTextEdit, "promptEdit").setPlainText(prompt)
    with qtbot.waitSignal(win.engine.worker.finished, timeout=timeout) as blocker:
        qtbot.mouseClick(_find(win, QPushButton, "generateButton"), Qt.MouseButton.LeftButton)
    return blocker.args[1]


def test_named_widgets_have_accessible_names(window):
    from PySide6.QtWidgets import QWidget

    names = ["promptEdit", "negativePromptEdit", "stepsSpin", "guidanceSpin", "seedSpin", "sizeCombo", "modelCombo",
             "backendCombo", "generateButton", "cancelButton", "liveToggle", "progressBar", "resultView", "galleryView"]
    for name in names:
        assert _find(window, QWidget, name).accessibleName(), name


def test_generate_shows_result_gallery_history_and_survives_restart(qtbot, window, tiny_lcm):
    output = _generate(qtbot, window)
    path = output.paths[0]
    assert path.is_file() and window.view.path == path and not window.view.image.isNull()
    assert window.gallery.count() == 1
    rows = window.history.entries()
    assert len(rows) == 1 and rows[0].path == path and rows[0].prompt == "a red circle"
    assert read_png_parameters(path).seed == rows[0].seed
    assert window.panel.negative.isEnabled() is False  # guidance-embedding model: no negative prompt
    window.close()
    again = create_window(model=tiny_lcm, paths=AppPaths.default())
    qtbot.addWidget(again)
    assert again.gallery.count() == 1 and again.gallery.entries()[0].path == path
    assert again.panel.prompt.toPlainText() == "a red circle"  # settings restored
    again.close()


def test_missing_history_file_is_shown_as_missing(qtbot, window, tiny_lcm):
    output = _generate(qtbot, window)
    output.paths[0].unlink()
    window.close()
    again = create_window(model=tiny_lcm, paths=AppPaths.default())
    qtbot.addWidget(again)
    again.show()
    item = again.gallery.item(0)
    assert "missing" in item.toolTip().lower()
    shown = again.view.path
    qtbot.mouseClick(again.gallery.viewport(), Qt.MouseButton.LeftButton,
                     pos=again.gallery.visualItemRect(item).center())
    assert again.statusBar().currentMessage() == f"File missing: {output.paths[0]}"
    assert again.view.path == shown  # nothing was loaded in its place
    again.close()


def test_keyboard_only_generation(qtbot, window):
    window.activateWindow()
    window.panel.prompt.setFocus()
    qtbot.keyClicks(window.panel.prompt, "a blue square")
    with qtbot.waitSignal(window.engine.worker.finished, timeout=30_000):
        qtbot.keyClick(window.panel.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.history.entries()[0].prompt == "a blue square"


def test_cancel_mid_run(qtbot, window):
    window.panel.steps.setValue(8)
    window.panel.prompt.setPlainText("a cat")
    worker = window.engine.worker
    worker.progress.connect(lambda job, step, total, rate: window.cancel() if step == 1 else None)
    with qtbot.waitSignal(worker.cancelled, timeout=30_000):
        window.generate()
    qtbot.waitUntil(lambda: not window.busy)
    assert window.history.entries() == [] and window.progress.format() == "Cancelled"


def test_live_mode_supersedes_stale_request(qtbot, window, monkeypatch):
    """The first live job is held inside its first UNet call until a newer request has superseded it."""
    from lcm_desktop.engine.torch_backend import TorchDenoiser

    real_call = TorchDenoiser.__call__
    entered, gate = threading.Event(), threading.Event()

    def gated_call(self, *args, **kwargs):  # on the engine thread
        entered.set()
        if not gate.wait(timeout=60):
            raise RuntimeError("the test never opened the gate")
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(TorchDenoiser, "__call__", gated_call)
    worker = window.engine.worker
    window.panel.steps.setValue(8)
    finished, cancelled, started, steps = [], [], [], []
    worker.finished.connect(lambda job, out: finished.append(job))
    worker.cancelled.connect(cancelled.append)
    worker.started.connect(lambda job, total: started.append(job))
    worker.progress.connect(lambda job, step, total, rate: steps.append((job, step)))
    window.panel.prompt.setPlainText("a dog")
    window.panel.live.setChecked(True)
    qtbot.waitUntil(lambda: bool(started) and entered.is_set(), timeout=30_000)
    first = started[0]
    assert window._job_id == first and steps == []  # held in step 1
    window.panel.prompt.setPlainText("a horse")  # edit while the first is running
    qtbot.waitUntil(lambda: window._job_id != first, timeout=30_000)  # the newer request was submitted
    gate.set()
    qtbot.waitUntil(lambda: bool(finished) and finished[-1] == window._job_id and not window.busy, timeout=30_000)
    window.panel.live.setChecked(False)
    assert cancelled == [first] and first not in finished  # stopped at a step boundary, not run to the end
    assert [step for job, step in steps if job == first] == [1]
    assert [step for job, step in steps if job == finished[-1]] == list(range(1, 9))
    assert [e.prompt for e in window.history.entries()] == ["a horse"]
    assert window.panel.seed_lock.isChecked()


def test_drag_out_carries_png_with_parameters_and_drop_restores(qtbot, window):
    output = _generate(qtbot, window, "a green triangle, top left")
    mime = window.view.mime_data()
    assert mime.hasImage() and len(mime.urls()) == 1
    dragged = mime.urls()[0].toLocalFile()
    params = read_png_parameters(dragged)
    req = output.result.request
    assert (params.prompt, params.seed, params.steps, params.guidance_scale) == (
        req.prompt, req.seed, req.steps, req.guidance_scale)
    gallery_mime = window.gallery.mimeData([window.gallery.item(0)])
    assert gallery_mime.urls()[0].toLocalFile() == dragged
    # change everything, then drop the PNG back in
    window.panel.apply(prompt="something else", steps=2, guidance=3.0, seed=1)
    assert window.restore_from_png(output.paths[0])
    assert window.panel.prompt.toPlainText() == req.prompt
    assert (window.panel.steps.value(), window.panel.seed.value()) == (req.steps, req.seed)
    assert window.panel.guidance.value() == pytest.approx(req.guidance_scale)
    assert window.panel.size.currentData() == (req.width, req.height)


def test_drop_of_a1111_png_restores_settings(qtbot, window, tmp_path):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a castle\nNegative prompt: blurry\nSteps: 6, Sampler: Euler a, CFG scale: 7, "
                                "Seed: 99, Size: 64x64, Model: tiny-lcm")
    Image.new("RGB", (8, 8)).save(tmp_path / "a1111.png", pnginfo=info)
    assert window.restore_from_png(tmp_path / "a1111.png")
    assert (window.panel.prompt.toPlainText(), window.panel.steps.value(), window.panel.seed.value()) == (
        "a castle", 6, 99)


def test_broken_model_shows_error_dialog_and_app_stays_usable(qtbot, window, tiny_lcm, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_lcm, broken)
    unet = broken / "unet" / "diffusion_pytorch_model.safetensors"
    unet.write_bytes(unet.read_bytes()[:1000])
    window.panel.model.addItem("broken", str(broken))
    window.panel.model.setCurrentIndex(window.panel.model.count() - 1)
    window.panel.prompt.setPlainText("a cat")
    with qtbot.waitSignal(window.engine.worker.failed, timeout=30_000) as blocker:
        window.generate()
    assert "corrupt or incomplete" in blocker.args[1]
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorDialog") is not None)
    dialog = window.findChild(QMessageBox, "errorDialog")
    assert "corrupt" in dialog.text() and "Traceback" in dialog.detailedText()
    dialog.close()
    window.panel.model.setCurrentIndex(window.panel.model.findData(str(tiny_lcm)))
    _generate(qtbot, window)
    assert window.gallery.count() == 1


def test_event_loop_never_stalls_over_100ms_while_generating(qtbot, window):
    _generate(qtbot, window)  # load the model first; loading is on the engine thread too
    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer(interval=5)
    timer.timeout.connect(tick)
    timer.start()
    window.panel.steps.setValue(8)
    window.panel.batch.setValue(4)
    _generate(qtbot, window, "a large yellow circle")
    timer.stop()
    assert len(gaps) > 5
    assert max(gaps[1:]) < 0.100, f"event loop stalled {max(gaps):.3f}s"


def test_invalid_prompt_is_reported_not_raised(qtbot, window):
    window.panel.prompt.setPlainText("   ")
    assert window.generate() is False
    assert "prompt" in window.last_error


def test_only_backends_this_machine_runs_are_enabled(qtbot, window):
    import torch

    combo = window.panel.backend
    qtbot.waitUntil(lambda: "Checking" not in combo.model().item(combo.findData("coreml-ne")).toolTip(),
                    timeout=60_000)  # the engine thread has probed the backends
    enabled = {combo.itemData(i): combo.model().item(i).isEnabled() for i in range(combo.count())}
    assert enabled["cpu"] is True
    assert enabled["cuda"] is torch.cuda.is_available()
    assert enabled["mps"] is torch.backends.mps.is_available()
    if sys.platform != "darwin":
        assert not enabled["coreml-ne"] and not enabled["coreml-gpu"]
        assert "macOS" in combo.model().item(combo.findData("coreml-ne")).toolTip()


def test_a_prompt_that_looks_like_settings_restores_exactly(qtbot, window):
    """The A1111 text would read these lines back as a negative prompt and steps; the JSON chunk keeps them."""
    prompt = "a red circle\nNegative prompt: blue\nSteps: 7"
    output = _generate(qtbot, window, prompt)
    window.panel.apply(prompt="something else", steps=2, guidance=3.0, seed=1)
    assert window.restore_from_png(output.paths[0])
    assert window.panel.prompt.toPlainText() == prompt
    assert window.panel.steps.value() == output.result.request.steps != 7
