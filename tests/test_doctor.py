from __future__ import annotations

import json

from lcm_desktop.cli import main


def test_doctor_reports_backends_with_reasons_and_times_the_model(tiny_lcm, capsys):
    assert main(["doctor", "--model", str(tiny_lcm)]) == 0
    out = capsys.readouterr().out
    assert "✓ PyTorch · CPU" in out
    for line in out.splitlines():
        if line.strip().startswith("✗"):
            assert len(line.split(")")[-1].strip()) > 10 or "  " in line.strip()[2:], line  # every ✗ says why
    assert "Core ML · Neural Engine" in out and "hash" in out
    assert "load" in out and "decode" in out and "(64x64)" in out


def test_doctor_json_and_a_bad_model(tmp_path, capsys):
    assert main(["doctor", "--model", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "model_index.json" in data["model"]["error"]
    assert all(b["available"] or b["why"] for b in data["backends"])
    assert data["system"]["python"] and data["packages"]["torch"] != "not installed"


def test_doctor_lists_the_reference_executor_as_a_debugging_backend_and_does_not_time_it(coreml_lcm, capsys):
    import sys

    assert main(["doctor", "--model", str(coreml_lcm)]) == 0
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if "reference executor (REFERENCE)" in line]
    assert line.strip().startswith("✓") and "debugging only" in line
    assert "Core ML (converted)" in out
    if sys.platform != "darwin":
        assert "reference-executor PSNR is in the model's manifest.json" in out
        assert "Generation (" not in out  # nothing timed: Core ML is missing and REFERENCE is never timed
