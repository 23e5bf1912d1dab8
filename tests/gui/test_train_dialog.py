""""New Style from Images…" on a tiny model: start, progress with ETA and previews, cancel, start again resumes."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QObject, QThread, Slot
from PySide6.QtWidgets import QApplication, QLineEdit, QProgressBar, QPushButton
from training.pictures import write_pictures

from lcm_desktop.core.paths import AppPaths
from lcm_desktop.gui import train_dialog
from lcm_desktop.gui.tasks import Task
from lcm_desktop.gui.train_dialog import TrainStyleDialog
from lcm_desktop.training import trainer
from lcm_desktop.training.checkpoint import load_checkpoint
from lcm_desktop.training.style_file import read_style_info

pytestmark = pytest.mark.usefixtures("qapp")


@pytest.fixture
def held_step(monkeypatch):
    """Holds the training thread inside its third step until ``release`` is set; ``inside`` says it got there."""
    inside, release = threading.Event(), threading.Event()
    real = trainer._Run._one_step

    def one_step(self):
        if self.step == 2 and not release.is_set():
            inside.set()
            release.wait(60)
        return real(self)

    monkeypatch.setattr(trainer._Run, "_one_step", one_step)
    return inside, release


@pytest.fixture
def one_thread():
    """Training on one torch thread here (the test suite shares two cores); the next test gets its threads back."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_start_progress_cancel_and_start_again_resumes(qtbot, tiny_lcm, tmp_path, held_step, one_thread,
                                                       monkeypatch):
    inside, release = held_step
    updates = []

    class Recorder(QObject):  # lives on the GUI thread, like the dialog: Qt queues the updates to it
        @Slot(object)
        def record(self, update):
            updates.append((update, QThread.currentThread() is QApplication.instance().thread()))

    recorder = Recorder()

    class RecordingTask(Task):  # the dialog's own connections stay as they are
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.progress.connect(recorder.record)

    monkeypatch.setattr(train_dialog, "Task", RecordingTask)
    dialog = TrainStyleDialog(AppPaths.default(), model=tiny_lcm, preview_every=2)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.findChild(QLineEdit, "trainFolder").setText(str(write_pictures(tmp_path / "pics")))
    dialog.findChild(QLineEdit, "trainName").setText("gui style")
    dialog.findChild(QLineEdit, "trainTrigger").setText("pink")
    dialog.steps.setValue(6)
    dialog.rank.setValue(4)

    dialog.findChild(QPushButton, "trainStart").click()
    assert not dialog.start_button.isEnabled() and dialog.cancel_button.isEnabled()
    qtbot.waitUntil(inside.is_set, timeout=60_000)
    qtbot.waitUntil(lambda: len(updates) == 2, timeout=10_000)
    assert all(on_gui_thread for _, on_gui_thread in updates)
    updates[:] = [u for u, _ in updates]
    bar = dialog.findChild(QProgressBar, "trainProgress")
    assert (bar.value(), bar.maximum()) == (2, 6)
    assert "Step 2 of 6" in dialog.status.text() and "s left" in dialog.status.text()
    assert updates[1].preview is not None and updates[1].preview.width() == 64  # a QImage from the thread
    assert dialog.preview.pixmap() is not None and not dialog.preview.pixmap().isNull()

    dialog.findChild(QPushButton, "trainCancel").click()
    release.set()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=60_000)
    assert "Stopped at step 3" in dialog.status.text() and dialog.start_button.isEnabled()
    assert load_checkpoint(trainer.checkpoint_path("gui style")).step == 3

    updates.clear()
    with qtbot.waitSignal(dialog.styleCreated, timeout=60_000) as created:
        dialog.findChild(QPushButton, "trainStart").click()
    assert [u.step for u, on_gui_thread in updates if on_gui_thread] == [4, 5, 6]  # resumed, not restarted
    path = created.args[0]
    assert path == AppPaths.default().data / "styles" / "gui style.safetensors" and path.is_file()
    assert str(path) in dialog.status.text()
    assert read_style_info(path).steps == 6


def test_a_bad_name_is_said_in_the_dialog_without_starting(qtbot, tiny_lcm, tmp_path):
    dialog = TrainStyleDialog(AppPaths.default(), model=tiny_lcm)
    qtbot.addWidget(dialog)
    dialog.folder.setText(str(tmp_path))
    dialog.name.setText("no/slashes")
    dialog.start()
    assert dialog.task is None and "`name` must be" in dialog.status.text()
