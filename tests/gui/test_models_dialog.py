"""The model manager on top of the models API: listing, import by drop, delete, convert as a child process."""

from __future__ import annotations

import shutil
import sys
import textwrap

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from lcm_desktop.core.paths import AppPaths
from lcm_desktop.gui.models_dialog import ModelsDialog

pytestmark = pytest.mark.usefixtures("qapp")


@pytest.fixture
def dialog(qtbot):
    dlg = ModelsDialog(AppPaths.default().ensure())
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


def _names(dlg):
    return [dlg.table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in range(dlg.table.rowCount())]


def test_lists_the_catalog_with_install_state(dialog):
    names = _names(dialog)
    assert "lcm-dreamshaper-v7" in names and "taesd" in names
    row = names.index("lcm-dreamshaper-v7")
    assert dialog.table.item(row, 2).text() == "no" and dialog.table.item(row, 3).text().startswith("≈")
    assert "Total disk used" in dialog.total.text()


def test_drop_a_folder_imports_it_and_delete_frees_it(qtbot, dialog, tiny_lcm, tmp_path):
    source = tmp_path / "my-model"
    shutil.copytree(tiny_lcm, source)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(source))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(dialog.modelsChanged, timeout=30_000):
        dialog.dropEvent(event)
    assert "my-model" in _names(dialog)
    dialog.select("my-model")
    assert dialog.delete_button.isEnabled() and dialog.convert_button.isEnabled()
    from PySide6.QtWidgets import QMessageBox

    original = QMessageBox.question
    QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes)
    try:
        dialog.delete()
    finally:
        QMessageBox.question = original
    assert "my-model" not in _names(dialog)
    assert not (AppPaths.default().data / "models" / "my-model").exists()


def test_importing_a_pickle_shows_the_reason(qtbot, dialog, tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not really")
    with qtbot.waitSignal(dialog.modelsChanged, timeout=10_000):
        dialog.import_path(ckpt)
    assert "pickle" in dialog.last_error and "safetensors" in dialog.last_error


def test_convert_runs_a_child_process_and_cancel_cleans_up(qtbot, dialog, tiny_lcm, tmp_path):
    source = tmp_path / "conv-model"
    shutil.copytree(tiny_lcm, source)
    from lcm_desktop.models.importer import import_model

    import_model(source, paths=AppPaths.default())
    dialog.refresh()
    dialog.select("conv-model")
    # A stand-in converter with the real one's contract (tests/convert/test_convert_cli.py checks that one):
    # it works in a hidden .partial folder beside --out and removes it on SIGTERM, not on SIGKILL.
    script = tmp_path / "fake_convert.py"
    script.write_text(textwrap.dedent("""\
        import shutil, signal, sys, time
        from pathlib import Path
        out = Path(sys.argv[sys.argv.index("--out") + 1])
        work = out.parent / f".{out.name}.1234.partial"
        work.mkdir()
        (work / "TextEncoder.mlpackage").write_text("half")
        def stop(signum, frame):
            shutil.rmtree(work)
            sys.exit(2)
        signal.signal(signal.SIGTERM, stop)
        print("phase 1/4: text encoder", flush=True)
        time.sleep(60)
        """))
    dialog.convert(program=[sys.executable, str(script)])
    qtbot.waitUntil(lambda: "phase 1/4" in dialog.status.text(), timeout=15_000)
    coreml = AppPaths.default().data / "coreml"
    assert [p.name for p in coreml.iterdir()] == [".conv-model-coreml.1234.partial"]  # work in progress
    assert dialog.cancel_button.isEnabled()
    with qtbot.waitSignal(dialog.modelsChanged, timeout=15_000):
        dialog.cancel()
    assert dialog.status.text() == "Conversion cancelled."
    assert list(coreml.iterdir()) == []  # the child was terminated (SIGTERM) and cleaned up; no model appeared
