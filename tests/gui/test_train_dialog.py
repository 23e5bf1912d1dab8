""""New Style from Images…" on a tiny model: start, progress with ETA and previews, cancel, start again resumes."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from PySide6.QtWidgets import QLineEdit, QProgressBar, QPushButton
from training.pictures import write_pictures

from lcm_desktop.core.paths import AppPaths
from lcm_desktop.gui.train_dialog import TrainStyleDialog
from lcm_desktop.training import trainer
from lcm_desktop.training.checkpoint import load_checkpoint
from lcm_desktop.training.style_file import read_style_info

pytestmark = pytest.mark.usefixtures("qapp")


@pytest.fixture
def no_training_here(monkeypatch):
    """Training in the app's own process fails the test: the dialog must run it as a child process."""

    def refuse(self, *args, **kwargs):
        raise AssertionError("the dialog trained inside the app's process")

    monkeypatch.setattr(trainer._Run, "__init__", refuse)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # two child processes, each importing torch and loading the model
def test_start_progress_cancel_and_start_again_resumes_in_a_child_process(qtbot, tiny_lcm, tmp_path,
                                                                          no_training_here, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the child's torch threads (the suite shares two cores)
    updates = []
    dialog = TrainStyleDialog(AppPaths.default(), model=tiny_lcm, preview_every=2)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.findChild(QLineEdit, "trainFolder").setText(str(write_pictures(tmp_path / "pics")))
    dialog.findChild(QLineEdit, "trainName").setText("gui style")
    dialog.findChild(QLineEdit, "trainTrigger").setText("pink")
    dialog.steps.setValue(100_000)  # cancelled long before the end
    dialog.rank.setValue(4)
    rng = torch.get_rng_state()

    dialog.findChild(QPushButton, "trainStart").click()
    assert not dialog.start_button.isEnabled() and dialog.cancel_button.isEnabled()
    dialog.task.event.connect(updates.append)
    qtbot.waitUntil(lambda: any(u.preview is not None for u in updates), timeout=120_000)
    bar = dialog.findChild(QProgressBar, "trainProgress")
    assert bar.maximum() == 100_000 and bar.value() >= 2
    assert "s left" in dialog.status.text()
    assert dialog.preview.pixmap() is not None and dialog.preview.pixmap().width() > 0  # the child's PNG, shown

    dialog.findChild(QPushButton, "trainCancel").click()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=120_000)
    stopped = load_checkpoint(trainer.checkpoint_path("gui style")).step
    assert stopped >= updates[-1].step >= 2
    assert f"Stopped at step {updates[-1].step}" in dialog.status.text() and dialog.start_button.isEnabled()

    updates.clear()
    dialog.steps.setValue(stopped + 2)
    with qtbot.waitSignal(dialog.styleCreated, timeout=120_000) as created:
        dialog.findChild(QPushButton, "trainStart").click()
        dialog.task.event.connect(updates.append)
    assert [u.step for u in updates if u.event == "step"] == [stopped + 1, stopped + 2]  # resumed, not restarted
    path = created.args[0]
    assert path == AppPaths.default().data / "styles" / "gui style.safetensors" and path.is_file()
    assert str(path) in dialog.status.text()
    assert read_style_info(path).steps == stopped + 2
    assert torch.equal(torch.get_rng_state(), rng)  # the app's process: its RNG untouched


FAKE_CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from PIL import Image
    args = sys.argv[1:]
    if "--fail" in Path(args[0]).name:
        print("error: the pictures folder is empty.", file=sys.stderr)
        sys.exit(2)
    previews = Path(args[args.index("--preview-dir") + 1])
    Image.new("RGB", (64, 64), (200, 30, 30)).save(previews / "1.png")
    print("torch chatter that is not ours")
    line = {"event": "step", "step": 1, "total": 2, "loss": 0.5, "eta": 3.0, "preview": str(previews / "1.png")}
    print("lcm-train " + json.dumps(line), flush=True)
    print("lcm-train " + json.dumps({"event": "step", "step": 2, "total": 2, "loss": 0.25, "eta": 0.0,
                                     "preview": None}), flush=True)
    print("lcm-train " + json.dumps({"event": "done", "output": args[0] + "/style.safetensors"}), flush=True)
    """)


def test_the_dialog_runs_the_child_reads_its_lines_and_says_its_error(qtbot, tiny_lcm, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(FAKE_CHILD, encoding="utf-8")
    dialog = TrainStyleDialog(AppPaths.default(), model=tiny_lcm, preview_every=1)
    dialog.program = [sys.executable, str(script)]
    qtbot.addWidget(dialog)
    folder = tmp_path / "pics"
    folder.mkdir()
    dialog.folder.setText(str(folder))
    dialog.name.setText("child style")
    seen = []
    with qtbot.waitSignal(dialog.styleCreated, timeout=60_000) as created:
        dialog.start()
        dialog.task.event.connect(seen.append)
    assert created.args[0] == folder / "style.safetensors" and str(folder) in dialog.status.text()
    assert [(e.event, e.step) for e in seen] == [("step", 1), ("step", 2), ("done", 0)]
    assert dialog.progress.value() == 2 and dialog.preview.pixmap().width() > 0  # the child's PNG, shown
    assert dialog.task is None and dialog._previews is None  # the preview folder is gone

    failing = tmp_path / "pics--fail"
    failing.mkdir()
    dialog.folder.setText(str(failing))
    dialog.start()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=60_000)
    assert dialog.status.text() == "the pictures folder is empty." and dialog.start_button.isEnabled()


def test_a_bad_name_is_said_in_the_dialog_without_starting(qtbot, tiny_lcm, tmp_path):
    dialog = TrainStyleDialog(AppPaths.default(), model=tiny_lcm)
    qtbot.addWidget(dialog)
    dialog.folder.setText(str(tmp_path))
    dialog.name.setText("no/slashes")
    dialog.start()
    assert dialog.task is None and "`name` must be" in dialog.status.text()
