"""The CLI writes PNGs with their parameters; every failure is one line on stderr and exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path

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



def test_generate_from_an_init_image_records_denoising_strength(tiny_lcm, tmp_path, capsys):
    from PIL import Image

    start = tmp_path / "sketch.png"
    Image.new("RGBA", (200, 120), (200, 30, 30, 255)).save(start)
    out = tmp_path / "from-sketch.png"
    code, stdout, err = _run(capsys, "generate", "a red circle", "--model", str(tiny_lcm), "--seed", "3",
                             "--steps", "2", "--init-image", str(start), "--strength", "0.6", "--out", str(out),
                             "--quiet")
    assert code == 0, err
    assert stdout.strip() == str(out) and "from sketch.png at strength 0.6" in err
    with Image.open(out) as png:
        text, chunk = png.info["parameters"], png.info["lcm_desktop"]
        assert png.size == (64, 64)
    assert "Model: tiny-lcm, Denoising strength: 0.6" in text
    assert '"strength": 0.6' in chunk
    params = read_png_parameters(out)
    assert params.strength == 0.6 and params.extra == {}


@pytest.mark.parametrize(("argv", "words"), [
    (["--init-image", "{bad}", "--strength", "0.5"], "`--init-image` must be a picture file (PNG, JPEG"),
    (["--init-image", "{missing}"], "`--init-image` must be an existing picture file"),
    (["--init-image", "{good}", "--strength", "1.5"], "`--strength` must be a number greater than 0 and at most 1"),
    (["--strength", "0.5"], "`--strength` must be used with --init-image, got 0.5."),
])
def test_init_image_flags_are_checked_before_the_model_loads(tmp_path, capsys, argv, words):
    from PIL import Image

    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8)).save(good)
    names = {"bad": bad, "missing": tmp_path / "nope.png", "good": good}
    argv = [a.format(**names) for a in argv]
    # no such model: a check that ran after resolving the model would fail with another message
    code, out, err = _run(capsys, "generate", "x", "--model", str(tmp_path / "no-model"), *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err


def test_too_few_schedule_points_lower_the_steps_with_one_note(tiny_lcm, tmp_path, capsys):
    from PIL import Image

    start = tmp_path / "start.png"
    Image.new("RGB", (64, 64), (0, 90, 200)).save(start)
    code, out, err = _run(capsys, "generate", "a cat", "--model", str(tiny_lcm), "--steps", "4", "--init-image",
                          str(start), "--strength", "0.05", "--out", str(tmp_path / "o"))  # progress bar on
    assert code == 0, err
    assert err.splitlines()[0] == ("note: 2 of the 4 steps run: at strength 0.05 the LCM schedule has 2 points "
                                   "(raise the strength to run more).")
    assert read_png_parameters(Path(out.strip())).steps == 2  # what ran is what the PNG records
    code, out, err = _run(capsys, "generate", "a cat", "--model", str(tiny_lcm), "--init-image", str(start),
                          "--strength", "0.01", "--out", str(tmp_path / "o"))
    assert code == 2 and out == "" and err.strip() == (
        "error: `--strength` must be at least 0.02 (below that no step of the 50-point LCM schedule is left), "
        "got 0.01.")


def test_a_long_weighted_prompt_is_not_cut_and_its_png_keeps_the_text_with_its_tags(tiny_lcm, tmp_path, capsys):
    words = "a cat dog red green blue yellow circle square large small background top bottom left right moon".split()
    prompt = " ".join(words[i % len(words)] for i in range(120)) + ", (red circle:1.3) BREAK moon"
    code, out, err = _run(capsys, "generate", prompt, "--model", str(tiny_lcm), "--steps", "1",
                          "--out", str(tmp_path / "long.png"), "--quiet")
    assert code == 0, err
    assert "dropped" not in err and "warning" not in err
    assert read_png_parameters(out.strip()).prompt == prompt
