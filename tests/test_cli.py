"""The CLI writes PNGs with their parameters; every failure is one line on stderr and exit 2."""

from __future__ import annotations

import shutil

import pytest

from lcm_desktop.cli import main
from lcm_desktop.core.metadata import read_png_parameters


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_writes_pngs_with_parameters(tiny_lcm, tmp_path, capsys):
    code, out, err = _run(capsys, "generate", "a red circle", "--model", str(tiny_lcm), "--seed", "7",
                          "--batch", "2", "--steps", "3", "--out", str(tmp_path / "imgs"), "--quiet")
    assert code == 0, err
    paths = out.split()
    assert len(paths) == 2 and all(p.endswith(".png") for p in paths)
    params = [read_png_parameters(p) for p in paths]
    assert [p.seed for p in params] == [7, 8]
    assert params[0].prompt == "a red circle" and params[0].steps == 3 and params[0].model == "tiny-lcm"
    assert (params[0].width, params[0].height, params[0].guidance_scale) == (64, 64, 8.5)
    assert len(params[0].model_hash) == 10
    assert "3 steps" in err and "s/step" in err


def test_generate_to_a_named_file(tiny_lcm, tmp_path, capsys):
    code, out, _ = _run(capsys, "generate", "a cat", "--model", str(tiny_lcm), "--steps", "1",
                        "--out", str(tmp_path / "cat.png"), "--quiet")
    assert code == 0 and out.strip() == str(tmp_path / "cat.png")


def test_progress_bar_goes_to_stderr(tiny_lcm, tmp_path, capsys):
    code, out, err = _run(capsys, "generate", "a cat", "--model", str(tiny_lcm), "--steps", "2",
                          "--out", str(tmp_path))
    assert code == 0 and all(line.endswith(".png") for line in out.split()) and "2/2" in err


@pytest.fixture
def broken_models(tiny_lcm, tmp_path):
    def copy(name):
        target = tmp_path / name
        shutil.copytree(tiny_lcm, target)
        return target

    pickled = copy("pickled")
    for comp in ("unet", "vae", "text_encoder"):
        for f in (pickled / comp).glob("*.safetensors"):
            f.rename(f.with_suffix(".bin"))
    truncated = copy("truncated")
    unet = truncated / "unet" / "diffusion_pytorch_model.safetensors"
    unet.write_bytes(unet.read_bytes()[: unet.stat().st_size // 2])
    not_model = tmp_path / "photos"
    not_model.mkdir()
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"PK\x03\x04")
    return {"pickled": pickled, "truncated": truncated, "not_model": not_model, "ckpt": ckpt}


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--steps", "0"], "`--steps` must be from 1 to 50"),
        (["--width", "500"], "`--width` must be a multiple of 8"),
        (["--batch", "20"], "`--batch` must be"),
        (["--guidance", "-1"], "`--guidance` must be"),
        (["--model", "/no/such/model"], "No model '/no/such/model'"),
        (["--model", "lcm-dreamshaper-v7"], "not downloaded"),
        (["--model", "{not_model}"], "is not a model folder"),
        (["--model", "{pickled}"], "Refusing to load"),
        (["--model", "{truncated}"], "corrupt or incomplete"),
        (["--model", "{ckpt}"], "Refusing to load model.ckpt"),
        (["--model", "{model}", "--device", "tpu"], "argument --device: must be auto, cpu"),
        (["--model", "{model}", "--device", "cuda:7"], "Device 'cuda:7' is not available"),
        (["--model", "{model}", "--compute-units", "GPU"], "argument --compute-units: invalid choice"),
        (["--model", "{model}", "--fast-decode"], "`--fast-decode` must be used with --tiny-decoder"),
        (["--model", "{model}", "--backend", "coreml"], "Core ML needs macOS"),
    ],
)
def test_errors_are_one_line_and_exit_2(argv, needle, broken_models, tiny_lcm, tmp_path, capsys):
    argv = [a.format(model=tiny_lcm, **broken_models) for a in argv]
    code, out, err = _run(capsys, "generate", "a cat", *argv, "--out", str(tmp_path / "out"), "--quiet")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and needle in err, err
    assert "Traceback" not in err and out == ""
    assert not list((tmp_path / "out").glob("*.png"))


def test_unwritable_output_is_a_clear_error(tiny_lcm, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _run(capsys, "generate", "a", "--model", str(tiny_lcm), "--out", str(blocker / "sub"), "--quiet")
    assert code == 2 and "output folder" in err


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "generate" in out and "gui" in out
