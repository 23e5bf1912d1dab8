"""`generate --sampler NAME --eta X`: the PNG records the real sampler; a sampler the model cannot run is one line."""

from __future__ import annotations

import pytest

from lcm_desktop.cli import main
from lcm_desktop.core.metadata import read_png_parameters
from lcm_desktop.core.request import GenerationRequest


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sampler_and_eta_are_recorded_and_read_back(tiny_lcm, tmp_path, capsys):
    out = tmp_path / "tcd.png"
    code, stdout, err = _run(capsys, "generate", "a red circle", "--model", str(tiny_lcm), "--seed", "3",
                             "--steps", "2", "--sampler", "tcd", "--eta", "0.6", "--out", str(out), "--quiet")
    assert code == 0, err
    assert "2 steps tcd eta 0.6" in err
    from PIL import Image

    with Image.open(out) as png:
        assert "Sampler: TCD" in png.info["parameters"] and "Eta: 0.6" in png.info["parameters"]
    params = read_png_parameters(out)
    assert (params.sampler, params.sampler_name, params.eta) == ("TCD", "tcd", 0.6)
    again = GenerationRequest(params.prompt, sampler=params.sampler_name, eta=params.eta)
    assert (again.sampler, again.eta) == ("tcd", 0.6)
    # the default sampler of an LCM keeps "Sampler: LCM" and writes no eta
    plain = tmp_path / "lcm.png"
    assert _run(capsys, "generate", "a red circle", "--model", str(tiny_lcm), "--steps", "1", "--out", str(plain),
                "--quiet")[0] == 0
    assert (read_png_parameters(plain).sampler, read_png_parameters(plain).eta) == ("LCM", None)


@pytest.mark.parametrize(("argv", "words"), [
    (["--sampler", "turbo"], "`--sampler` must be one of lcm, tcd, hyper-sd, ddim-trailing for tiny-lcm"),
    (["--sampler", "dpm"], "`--sampler` must be one of lcm, tcd, hyper-sd, ddim-trailing, euler-a-trailing"),
    (["--eta", "0.5"], "`--eta` must be left out with the lcm sampler"),
    (["--sampler", "tcd", "--eta", "1.5"], "`--eta` must be a number from 0 to 1, got 1.5."),
])
def test_sampler_errors_are_one_line_before_the_model_loads(tiny_lcm, monkeypatch, capsys, argv, words):
    from lcm_desktop.engine.engine import Engine

    def refuse(self):
        raise AssertionError("the model was loaded before the flags were checked")

    monkeypatch.setattr(Engine, "load", refuse)
    code, out, err = _run(capsys, "generate", "x", "--model", str(tiny_lcm), *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err
