"""An Apple-layout Core ML folder (no manifest.json) is a Core ML model to the CLI, the app and doctor alike."""

from __future__ import annotations

import json

import pytest

from lcm_desktop.cli import main
from lcm_desktop.core.model_info import ModelKind, describe_model


def test_describe_model_says_apple_coreml(apple_layout_folder):
    info = describe_model(apple_layout_folder)
    assert info.kind is ModelKind.APPLE_COREML and info.native_size == (64, 64) and info.fixed_size


def test_the_cli_runs_it_as_core_ml(apple_layout_folder, tmp_path, capsys):
    # --backend auto picks Core ML for it; off a Mac that is the reference executor or a clear line.
    code = main(["generate", "a red circle", "--model", str(apple_layout_folder), "--steps", "1", "--seed", "1",
                 "--guidance", "6", "--out", str(tmp_path / "a.png"), "--quiet", "--compute-units", "REFERENCE"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip().endswith("a.png") and "on coreml:REFERENCE" in err
    assert main(["generate", "x", "--model", str(apple_layout_folder), "--backend", "torch", "--quiet"]) == 2
    assert "a converted Core ML model" in capsys.readouterr().err


def test_doctor_reports_it_as_core_ml(apple_layout_folder, capsys):
    assert main(["doctor", "--model", str(apple_layout_folder), "--no-generate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["format"] == "Core ML (Apple layout)"


@pytest.mark.usefixtures("qapp")
def test_the_app_offers_core_ml_backends_for_it(qtbot, apple_layout_folder):
    from lcm_desktop.core.paths import AppPaths
    from lcm_desktop.gui.app import create_window

    window = create_window(model=apple_layout_folder, paths=AppPaths.default())
    qtbot.addWidget(window)
    try:
        assert window.model_info.kind is ModelKind.APPLE_COREML
        assert window.panel.size.count() == 1 and window.panel.size.currentData() == (64, 64)  # its one size
        if window.panel.backend.model().item(window.panel.backend.findData("coreml-ne")).isEnabled():
            assert window.panel.backend.currentData() in ("coreml-ne", "coreml-gpu")
        else:  # off a Mac: generating says which backend it needs instead of running it on PyTorch
            window.panel.prompt.setPlainText("a red circle")
            assert not window.generate()
            assert "is a Core ML model; no Core ML backend runs on this machine (Core ML runs models only on macOS)" \
                in window.last_error
    finally:
        window.close()
