from __future__ import annotations

import json
import re

from lcm_desktop.cli import main


def test_doctor_reports_system_packages_backends_and_the_model(tiny_lcm, capsys):
    assert main(["doctor", "--model", str(tiny_lcm), "--no-generate"]) == 0
    out = capsys.readouterr().out
    assert "✓ PyTorch · CPU" in out and "Core ML · Neural Engine" in out
    assert re.search(r"^  torch +\d", out, re.M)
    assert re.search(r"^  hash +\S{8,}", out, re.M)
    assert "Generation" not in out  # --no-generate


def test_doctor_times_a_generation_per_phase(tiny_lcm, capsys):
    assert main(["doctor", "--model", str(tiny_lcm)]) == 0
    out = capsys.readouterr().out
    number = r"\d+\.\d+"
    line = re.search(rf"PyTorch · CPU +load {number}  encode {number}  steps \[({number}(?:, {number})*)\]  "
                     rf"decode {number}  total {number}  \(64x64\)", out)
    assert line, out
    assert len(line[1].split(", ")) == 4  # the 4-step generation, each step timed


def test_doctor_json_and_a_bad_model(tmp_path, capsys):
    assert main(["doctor", "--model", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "model_index.json" in data["model"]["error"]
    assert all(b["available"] or b["why"] for b in data["backends"])  # every unavailable backend says why
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
