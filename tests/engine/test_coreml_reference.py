"""The Core ML backend on the reference executor, end to end: the CLI on Linux, unknown ops, the built-in model."""

from __future__ import annotations

import numpy as np
import pytest

from lcm_desktop.core.errors import ModelFormatError


def test_the_cli_generates_on_linux_with_the_reference_executor(coreml_lcm, tiny_lcm, tmp_path, capsys):
    """``lcm-desktop generate --backend coreml --compute-units REFERENCE``: the PyTorch image of the same request."""
    from convert.validate import psnr
    from lcm_desktop.cli import main

    request = ["a red circle on a blue background", "--seed", "7", "--steps", "2", "--quiet"]
    assert main(["generate", *request, "--backend", "coreml", "--compute-units", "REFERENCE",
                 "--model", str(coreml_lcm), "--out", str(tmp_path / "coreml.png")]) == 0, capsys.readouterr().err
    assert main(["generate", *request, "--model", str(tiny_lcm), "--out", str(tmp_path / "torch.png")]) == 0
    from PIL import Image

    ours = np.asarray(Image.open(tmp_path / "coreml.png"), dtype=np.float64)
    ref = np.asarray(Image.open(tmp_path / "torch.png"), dtype=np.float64)
    assert ours.shape == ref.shape == (64, 64, 3)
    assert psnr(ours, ref) >= 35  # the fp16 packages' threshold, on the final image
    assert ours.std() > 5  # a picture, not a flat field that any two backends would agree on


def test_reference_packages_must_be_ml_programs_it_knows(coreml_lcm, tmp_path):
    import dataclasses

    from lcm_desktop.mlprogram import Executor, load_program

    program = load_program(coreml_lcm / "Unet.mlpackage")
    first = dataclasses.replace(program.ops[0], type="fancy_new_op")
    with pytest.raises(
        ModelFormatError, match=r"Unet.mlpackage uses the ML Program op 'fancy_new_op'.*Core ML on a Mac"
    ):
        Executor(dataclasses.replace(program, ops=(first, *program.ops[1:])))


@pytest.mark.slow  # ~80 s of conversion; test_the_cli_generates_on_linux_with_the_reference_executor checks the
# same path (convert, REFERENCE generate, PSNR against PyTorch) on the tiny model in `make test`
def test_the_builtin_model_converted_on_linux_makes_the_pytorch_image(tmp_path, capsys):
    """The issue's bar: convert the built-in model (PSNR printed per component, from executing the saved
    packages), then generate on the converted folder with REFERENCE: the PyTorch image of the same request."""
    from PIL import Image

    from convert.__main__ import main as convert_main
    from convert.validate import psnr
    from lcm_desktop.cli import main
    from lcm_desktop.core.paths import builtin_model_path

    out = tmp_path / "lcm-demo-coreml"
    assert (
        convert_main([str(builtin_model_path()), "--out", str(out), "--components", "text_encoder,unet,vae_decoder"])
        == 0
    )
    printed = [line for line in capsys.readouterr().out.splitlines() if "executed the saved package" in line]
    assert [line.split(":")[0] for line in printed] == ["[1/3] TextEncoder", "[2/3] Unet", "[3/3] VAEDecoder"]
    from lcm_desktop.core.manifest import load_manifest

    assert all(p.passed for c in load_manifest(out).components for p in c.parity)
    from lcm_desktop.core.model_info import describe_model

    # The converted folder keeps the source's recommendations: no flags needed for the same image.
    assert describe_model(out).defaults == describe_model(builtin_model_path()).defaults
    request = ["--seed", "3", "--quiet"]
    assert main(["generate", *request, "--backend", "coreml", "--compute-units", "REFERENCE", "--model", str(out),
                 "--out", str(tmp_path / "coreml.png")]) == 0
    assert main(["generate", *request, "--out", str(tmp_path / "torch.png")]) == 0
    ours, ref = (np.asarray(Image.open(tmp_path / f"{n}.png"), dtype=np.float64) for n in ("coreml", "torch"))
    assert ours.shape == ref.shape and ours.std() > 20
    assert psnr(ours, ref) >= 35  # measured: 61 dB, at most one 8-bit level apart
