"""`python -m convert`'s command line and every error path: one line on stderr, exit 2, nothing half-written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_output import error_line

from convert.__main__ import main
from lcm_desktop.core.errors import ConversionError, ParityError
from lcm_desktop.core.manifest import load_manifest


@pytest.fixture()
def source_copy(tiny_lcm, tmp_path) -> Path:
    folder = tmp_path / "source"
    shutil.copytree(tiny_lcm, folder)
    return folder


def _fails(capsys, argv, match: str) -> str:
    assert main([str(a) for a in argv]) == 2
    err = error_line(capsys.readouterr().err)
    assert match in err, err
    return err


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".part" in p.name)  # publish_dir: .NAME.PID-RAND[.old].part


def test_existing_output_needs_force_and_force_replaces_only_a_conversion(tiny_lcm, cli_vae_decoder, tmp_path,
                                                                          capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    _fails(capsys, [tiny_lcm, "--out", out, "--components", "vae_encoder"], "pass --force")
    # A user's folder (no manifest of ours) is never deleted, even with --force.
    _fails(capsys, [tiny_lcm, "--out", out, "--components", "vae_encoder", "--force"],
           "--force only replaces an earlier conversion")
    (out / "manifest.json").write_text('["not ours"]')
    _fails(capsys, [tiny_lcm, "--out", out, "--components", "vae_encoder", "--force"], "no readable manifest.json")
    assert (out / "keep.txt").read_text() == "mine"
    # An earlier conversion is replaced.
    shutil.rmtree(out)
    shutil.copytree(cli_vae_decoder[0], out)  # an earlier conversion (VAEDecoder only)
    (out / "stale.txt").write_text("old conversion")
    assert main([str(tiny_lcm), "--out", str(out), "--components", "vae_encoder", "--force"]) == 0
    stdout = capsys.readouterr().out
    assert "[1/1] VAEEncoder: captured" in stdout and "done in" in stdout and "VAEEncoder 0." in stdout
    assert not (out / "stale.txt").exists()
    assert [c.name for c in load_manifest(out).components] == ["VAEEncoder"]
    assert _leftovers(tmp_path) == []


def test_force_never_follows_a_link_or_replaces_a_file(tiny_lcm, tmp_path, capsys):
    home = tmp_path / "Documents"
    home.mkdir()
    (home / "letter.txt").write_text("mine")
    link = tmp_path / "link"
    link.symlink_to(home)
    _fails(capsys, [tiny_lcm, "--out", link, "--components", "vae_encoder", "--force"], "it is a link")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    _fails(capsys, [tiny_lcm, "--out", a_file, "--components", "vae_encoder", "--force"], "it is a file")
    assert (home / "letter.txt").read_text() == "mine" and a_file.read_text() == "mine"


def test_size_option_fixes_the_shapes(tiny_lcm, tmp_path, capsys):
    out = tmp_path / "wide"
    assert main([str(tiny_lcm), "--out", str(out), "--components", "vae_decoder", "--size", "96x64"]) == 0
    m = load_manifest(out)
    assert (m.width, m.height) == (96, 64)
    assert m.require("VAEDecoder").inputs[0].shape == (1, 4, 8, 12)
    assert m.require("VAEDecoder").outputs[0].shape == (1, 3, 64, 96)


def test_unsupported_architecture(source_copy, tmp_path, capsys):
    config = json.loads((source_copy / "unet" / "config.json").read_text())
    config["_class_name"] = "SD3Transformer2DModel"
    (source_copy / "unet" / "config.json").write_text(json.dumps(config))
    _fails(capsys, [source_copy, "--out", tmp_path / "out"], "unsupported architecture: unet is SD3Transformer2DModel")
    assert not (tmp_path / "out").exists()


def test_missing_component(source_copy, tmp_path, capsys):
    shutil.rmtree(source_copy / "vae")
    _fails(capsys, [source_copy, "--out", tmp_path / "out"], "has no vae/ folder")


def test_not_a_model_folder(tmp_path, capsys):
    _fails(capsys, [tmp_path, "--out", tmp_path / "out"], "has no model_index.json")


def test_pickle_weights_are_refused(source_copy, tmp_path, capsys):
    weights = source_copy / "unet" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    _fails(capsys, [source_copy, "--out", tmp_path / "out"], "only pickle weights")


def test_bad_options(tiny_lcm, tmp_path, capsys):
    _fails(capsys, [tiny_lcm, "--out", tmp_path / "o", "--size", "500x500"], "multiples of 8")
    _fails(capsys, [tiny_lcm, "--out", tmp_path / "o", "--size", "big"], "--size must look like 512x512")
    _fails(capsys, [tiny_lcm, "--out", tmp_path / "o", "--components", "unet,safety_checker"], "--components must name")
    _fails(capsys, [tiny_lcm, "--out", tmp_path / "o", "--max-prompt-chunks", "0"],
           "--max-prompt-chunks must be a whole number from 1 to 8 (75 prompt tokens each), got 0.")
    with pytest.raises(SystemExit) as exc:  # argparse's own choices
        main([str(tiny_lcm), "--out", str(tmp_path / "o"), "--palettize", "5"])
    assert exc.value.code == 2


def test_not_enough_disk_space(tiny_lcm, tmp_path, capsys, monkeypatch):
    import convert.conversion

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(convert.conversion.shutil, "disk_usage", lambda _: usage._replace(free=1000))
    _fails(capsys, [tiny_lcm, "--out", tmp_path / "out"], "not enough disk space")
    assert not (tmp_path / "out").exists()


def test_coremltools_missing(tiny_lcm, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "coremltools", None)
    _fails(capsys, [tiny_lcm, "--out", tmp_path / "out"], "coremltools is not installed")


@pytest.mark.parametrize("failure", [ParityError("Unet.noise_pred differs"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_conversion_leaves_nothing(tiny_lcm, tmp_path, capsys, monkeypatch, failure):
    import convert.conversion

    real = convert.conversion.convert_component
    calls = []

    def second_fails(job, work, *args):
        calls.append(job.name)
        if len(calls) == 2:
            assert (work / "TextEncoder.mlpackage").is_dir()  # the first one was written…
            raise failure
        return real(job, work, *args)

    monkeypatch.setattr(convert.conversion, "convert_component", second_fails)
    out = tmp_path / "out"
    err = _fails(capsys, [tiny_lcm, "--out", out, "--components", "text_encoder,vae_encoder"], "error: ")
    assert ("differs" in err) if isinstance(failure, ParityError) else ("interrupted" in err)
    assert not out.exists() and _leftovers(tmp_path) == []  # …and removed with everything else


def test_module_runs_as_a_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "convert", str(tmp_path), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert proc.stderr.strip().endswith("must be a diffusers model folder.")


def test_threshold_catches_a_dropped_guidance_embedding(tiny_lcm):
    """The traced-vs-eager threshold (1e-3) is far above fp32 noise and far below a real mistake,
    even on this tiny random-weight UNet whose guidance embedding matters little (≈ 6e-2)."""
    import torch

    from convert import validate
    from convert.components import build_wrappers
    from convert.options import ConvertOptions

    unet = build_wrappers(ConvertOptions(source=tiny_lcm, out=tiny_lcm / "unused", components=("unet",)))["Unet"]
    inputs = unet.example_inputs(torch.Generator().manual_seed(0))
    with torch.no_grad():
        good = unet(*inputs)
        dropped = unet(*inputs[:3], torch.zeros_like(inputs[3]))
    assert validate.relative_error(dropped, good) > 20 * validate.MAX_RELATIVE_ERROR
    with pytest.raises(ParityError, match="Unet.noise_pred differs"):
        validate.check_traced_vs_eager("Unet", ("noise_pred",), (dropped,), (good,))
    [ok] = validate.check_traced_vs_eager("Unet", ("noise_pred",), (good + 1e-7 * good.std(),), (good,))
    assert ok.passed and ok.value < 1e-6


def test_saved_spec_that_disagrees_with_the_manifest_fails(coreml_lcm):
    from dataclasses import replace

    from convert import validate

    spec = load_manifest(coreml_lcm).require("Unet")
    validate.check_package_io(coreml_lcm / "Unet.mlpackage", spec)
    wrong = replace(spec, inputs=spec.inputs[:3])
    with pytest.raises(ConversionError, match="declares inputs"):
        validate.check_package_io(coreml_lcm / "Unet.mlpackage", wrong)


def test_psnr():
    import numpy as np

    from convert.validate import psnr

    ref = np.linspace(-1, 1, 1000)
    assert psnr(ref, ref) == float("inf")
    assert psnr(ref + 0.01, ref) == pytest.approx(40.0, abs=1e-6)  # peak 1, rmse 0.01


def test_only_what_the_requested_components_need_is_read(source_copy, tmp_path, capsys):
    """A UNet + VAE folder (no text encoder, tokenizer or safety checker listed) converts the VAE decoder."""
    index = json.loads((source_copy / "model_index.json").read_text())
    for name in ("text_encoder", "tokenizer", "safety_checker", "feature_extractor", "image_encoder"):
        index.pop(name, None)
        shutil.rmtree(source_copy / name, ignore_errors=True)
    (source_copy / "model_index.json").write_text(json.dumps(index))
    assert main([str(source_copy), "--out", str(tmp_path / "out"), "--components", "vae_decoder"]) == 0
    assert not (tmp_path / "out" / "vocab.json").exists()
    assert [c.name for c in load_manifest(tmp_path / "out").components] == ["VAEDecoder"]
    _fails(
        capsys, [source_copy, "--out", tmp_path / "o2", "--components", "text_encoder"], "has no text_encoder/ folder"
    )


def test_unknown_pipeline_class(source_copy, tmp_path, capsys):
    index = json.loads((source_copy / "model_index.json").read_text())
    (source_copy / "model_index.json").write_text(json.dumps({**index, "_class_name": "FluxPipeline2"}))
    _fails(capsys, [source_copy, "--out", tmp_path / "out", "--components", "vae_decoder"], "pipeline 'FluxPipeline2'")


def test_a_terminated_conversion_cleans_up(tiny_lcm, tmp_path):
    """The app cancels a conversion by terminating its child process: SIGTERM cleans up as Ctrl-C does."""
    import signal

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "convert", str(tiny_lcm), "--out", str(out), "--components",
                             "text_encoder,unet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            # Before the first package (~3 s sooner); an interrupt after one was written: the test above.
            if line.startswith("loaded "):
                assert [p for p in tmp_path.iterdir() if p.name.endswith(".part")]  # work in progress exists
                proc.send_signal(signal.SIGTERM)
                break
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 2 and "interrupted; nothing was written" in stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_sampler_names_the_preset_a_fused_distillation_lora_needs(tiny_lcm, tmp_path, capsys):
    from lcm_desktop.core.model_info import describe_model

    _fails(capsys, [tiny_lcm, "--out", tmp_path / "o", "--sampler", "plms"], "`sampler` must be one of")
    out = tmp_path / "tcd"
    assert main([str(tiny_lcm), "--out", str(out), "--components", "vae_decoder", "--sampler", "TCD",
                 "--no-verify"]) == 0
    assert load_manifest(out).sampler == "tcd"
    info = describe_model(out)  # the Core ML model runs TCD, at TCD's steps
    assert info.preset.name == "tcd" and info.defaults.steps == info.preset.default_steps
