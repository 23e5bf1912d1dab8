"""The real window, offscreen, driven by objectName with qtbot."""

from __future__ import annotations

import shutil
import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from lcm_desktop.core.metadata import read_png_parameters
from lcm_desktop.core.paths import AppPaths
from lcm_desktop.gui.app import create_window

pytestmark = pytest.mark.usefixtures("qapp")


def _find(win, cls, name):
    widget = win.findChild(cls, name)
    assert widget is not None, name
    return widget


def _generate(qtbot, win, prompt="a red circle", timeout=30_000):
    from PySide6.QtWidgets import QPlainTextEdit, QPushButton

    _find(win, QPlainTextEdit, "promptEdit").setPlainText(prompt)
    with qtbot.waitSignal(win.engine.finished, timeout=timeout) as blocker:
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
    with qtbot.waitSignal(window.engine.finished, timeout=30_000):
        qtbot.keyClick(window.panel.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.history.entries()[0].prompt == "a blue square"


def test_cancel_mid_run(qtbot, window):
    window.panel.steps.setValue(8)
    window.panel.prompt.setPlainText("a cat")
    worker = window.engine
    worker.progress.connect(lambda job, step, total, rate: window.cancel() if step == 1 else None)
    with qtbot.waitSignal(worker.cancelled, timeout=30_000):
        window.generate()
    qtbot.waitUntil(lambda: not window.busy)
    assert window.history.entries() == [] and window.progress.format() == "Cancelled"


def test_live_mode_runs_one_job_at_a_time_and_the_newest_input_wins(qtbot, window, gate, submitted):
    """A live job is held inside its first UNet call while the prompt is edited twice: nothing is queued or
    cancelled; when it ends, exactly one more job runs, with the newest prompt.  Live results are not saved."""
    worker = window.engine
    window.panel.steps.setValue(3)
    finished, cancelled = [], []
    worker.finished.connect(lambda job, out: finished.append((job, out)))
    worker.cancelled.connect(cancelled.append)
    window.panel.prompt.setPlainText("a dog")
    window.panel.live.setChecked(True)
    qtbot.waitUntil(lambda: gate.entered.is_set(), timeout=30_000)
    assert [j.request.prompt for j in submitted] == ["a dog"] and not submitted[0].save
    window.panel.prompt.setPlainText("a horse")  # edits while the first is in flight: nothing new starts
    window.panel.prompt.setPlainText("a zebra")
    assert len(submitted) == 1 and cancelled == []
    gate.open()
    qtbot.waitUntil(lambda: len(finished) == 2 and not window.busy, timeout=30_000)
    window.panel.live.setChecked(False)
    assert [j.request.prompt for j in submitted] == ["a dog", "a zebra"]
    assert [job for job, _ in finished] == [j.id for j in submitted] and cancelled == []
    assert window.history.entries() == [] and window.gallery.count() == 0  # live updates are not saved
    assert not window.view.image.isNull() and window.view.path is None
    assert window.panel.seed_lock.isChecked() and submitted[0].request.seed == submitted[1].request.seed
    _generate(qtbot, window, "a zebra")  # Generate keeps one
    assert [e.prompt for e in window.history.entries()] == ["a zebra"]


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
    window.session.update(prompt="something else", steps=2, guidance_scale=3.0, seed=1, seed_locked=True)
    assert window.actions.restore_from_png(output.paths[0])
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
    assert window.actions.restore_from_png(tmp_path / "a1111.png")
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
    with qtbot.waitSignal(window.engine.failed, timeout=30_000) as blocker:
        window.generate()
    assert "corrupt or incomplete" in blocker.args[1]
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorDialog") is not None)
    dialog = window.findChild(QMessageBox, "errorDialog")
    assert "corrupt" in dialog.text() and "Traceback" in dialog.detailedText()
    dialog.close()
    window.panel.model.setCurrentIndex(window.panel.model.findData(str(tiny_lcm)))
    _generate(qtbot, window)
    assert window.gallery.count() == 1


def test_the_event_loop_keeps_running_while_generating(qtbot, window, ticks, unet_threads):
    """No UNet call on the GUI thread, and the GUI's timer keeps firing through the generation (long gaps, as
    preemption on a loaded machine makes them, take under half the time; blocking for the generation: ~all)."""
    _generate(qtbot, window)  # load the model first; loading is on the engine thread too
    timer = ticks()
    timer.start()
    window.panel.steps.setValue(8)
    window.panel.batch.setValue(4)
    _generate(qtbot, window, "a large yellow circle")
    timer.stop()
    assert len(unet_threads) >= 8 and not any(unet_threads)  # every step of both generations: engine thread
    assert len(timer.gaps) > 5
    assert timer.stalled_share < 0.5, f"event loop stalled {timer.stalled_share:.0%} of {timer.span:.2f} s"


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
    window.session.update(prompt="something else", steps=2, guidance_scale=3.0, seed=1, seed_locked=True)
    assert window.actions.restore_from_png(output.paths[0])
    assert window.panel.prompt.toPlainText() == prompt
    assert window.panel.steps.value() == output.result.request.steps != 7


def test_generate_while_live_is_shown_and_saved_and_live_waits_for_it(qtbot, window, gate, submitted):
    """Generate during a held live update: the kept image is the one shown and saved; Live starts nothing until
    it ends, then only for an edit made meanwhile."""
    finished = []
    window.engine.finished.connect(lambda job, out: finished.append(job))
    window.panel.steps.setValue(2)
    window.panel.prompt.setPlainText("a dog")
    window.panel.live.setChecked(True)
    qtbot.waitUntil(gate.entered.is_set, timeout=30_000)
    assert window.generate()  # keep this one (queued behind the live update)
    window.panel.prompt.setPlainText("a cat")  # an edit while both are ahead
    assert len(submitted) == 2 and [j.save for j in submitted] == [False, True]
    gate.open()
    qtbot.waitUntil(lambda: len(finished) == 3 and not window.busy, timeout=60_000)
    window.panel.live.setChecked(False)
    assert [j.request.prompt for j in submitted] == ["a dog", "a dog", "a cat"] and not submitted[2].save
    assert [e.prompt for e in window.history.entries()] == ["a dog"]  # only the kept one


def test_quitting_while_a_generation_runs_stops_the_engine_thread(qtbot, tiny_lcm, gate):
    import threading

    win = create_window(model=tiny_lcm, paths=AppPaths.default())
    qtbot.addWidget(win)
    win.show()
    win.session.prompt = "a red circle"
    assert win.generate()
    qtbot.waitUntil(lambda: gate.entered.is_set(), timeout=30_000)  # held inside a UNet call
    job = win.engine.queue.running
    threading.Thread(target=lambda: job.cancel_event.wait(30) and gate.open(), daemon=True).start()
    win.close()  # asks the job to stop between steps, waits for the thread
    assert job.wait(0) and job.state.value == "cancelled"
    assert not win.engine.runner._thread.is_alive()
