"""The converter executes every package it saved (reference executor) and checks it against PyTorch.

Planted faults prove the check: the saved package is corrupted right after coremltools wrote it
(two output channels of a weight swapped, or a palette entry's sign flipped), exactly the kind of
mistake that stays invisible until someone on a Mac sees a wrong image.  The conversion must fail
with one line naming the component, and leave nothing behind.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from lcm_desktop.core.errors import ParityError
from lcm_desktop.core.manifest import load_manifest

WEIGHTS = Path("Data", "com.apple.CoreML", "weights", "weight.bin")


def _edit_blob(package: Path, owner: str, attribute: str, edit) -> None:
    """Rewrite, in place, the fp16 blob that op ``owner``'s ``attribute`` points to in the weight file."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(package))
    function = spec.mlProgram.functions["main"]
    for op in function.block_specializations[function.opset].operations:
        value = op.attributes.get(attribute) if op.outputs and op.outputs[0].name == owner else None
        if value is not None and value.WhichOneof("value") == "blobFileValue":
            break
    else:
        raise AssertionError(f"no {owner}:{attribute} blob in {package.name}")
    path = package / WEIGHTS
    data = bytearray(path.read_bytes())
    sentinel, _, size, offset = struct.unpack_from("<IIQQ", data, value.blobFileValue.offset)
    assert sentinel == 0xDEADBEEF
    array = np.frombuffer(bytes(data[offset:offset + size]), np.float16).copy()
    data[offset:offset + size] = edit(array).astype(np.float16).tobytes()
    path.write_bytes(bytes(data))


def swap_first_two_output_channels(weights: np.ndarray, out_channels: int) -> np.ndarray:
    rows = weights.reshape(out_channels, -1)
    return rows[[1, 0, *range(2, out_channels)]]


def flip_largest_palette_entry(lut: np.ndarray) -> np.ndarray:
    lut = lut.copy()
    i = int(np.argmax(np.abs(lut)))
    lut[i] = -lut[i]
    return lut


def _plant(monkeypatch, stage: str, fault) -> list[str]:
    """Corrupt each package named VAEDecoder right after ``stage`` (to_mlpackage or palettize) wrote it."""
    import convert.conversion

    real = getattr(convert.conversion, stage)
    planted = []

    def corrupting(*args, **kwargs):
        result = real(*args, **kwargs)
        package = Path(args[3] if stage == "to_mlpackage" else args[2])
        if package.name.startswith("VAEDecoder"):
            fault(package)
            planted.append(package.name)
        return result

    monkeypatch.setattr(convert.conversion, stage, corrupting)
    return planted


def _swap_decoder_colours(package: Path) -> None:
    _edit_blob(package, "p_decoder_conv_out_weight_to_fp16", "val", lambda w: swap_first_two_output_channels(w, 3))


def test_every_saved_package_is_executed_and_its_psnr_recorded(coreml_lcm, coreml_lcm_original_6bit):
    for folder, threshold in ((coreml_lcm, 35.0), (coreml_lcm_original_6bit, 30.0)):
        for component in load_manifest(folder).components:
            checks = [p for p in component.parity if p.check == "reference_vs_torch"]
            assert [p.output for p in checks] == [s.name for s in component.outputs], component.name
            assert all(p.metric == "psnr_db" and p.threshold == threshold and p.passed for p in checks)
    fp16 = load_manifest(coreml_lcm).require("Unet").parity[-1].value
    six = load_manifest(coreml_lcm_original_6bit).require("Unet").parity[-1].value
    assert 30 < six < fp16 - 10 and fp16 > 45


def test_the_progress_shows_the_measured_psnr(cli_vae_decoder):
    folder, out = cli_vae_decoder
    line = next(line for line in out.splitlines() if "executed the saved package" in line)
    assert line.startswith("[1/1] VAEDecoder: executed the saved package, vs PyTorch image ") and line.endswith(" s")
    value = float(line.split("image ")[1].split(" dB")[0])
    assert value == pytest.approx(load_manifest(folder).require("VAEDecoder").parity[-1].value, abs=0.05)


def test_swapped_weight_channels_fail_the_conversion_naming_the_component(tiny_lcm, tmp_path, monkeypatch, capsys):
    from convert.__main__ import main

    planted = _plant(monkeypatch, "to_mlpackage", _swap_decoder_colours)
    code = main([str(tiny_lcm), "--out", str(tmp_path / "out"), "--components", "vae_decoder"])
    [err] = [line for line in capsys.readouterr().err.splitlines() if "error" in line]  # (libraries' bars aside)
    assert planted == ["VAEDecoder.mlpackage"] and code == 2
    assert err.startswith("error: VAEDecoder.image: the saved VAEDecoder.mlpackage, run by the reference executor, is ")
    assert "dB PSNR from PyTorch (needs ≥ 35 dB)" in err
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_a_flipped_palette_entry_fails_the_palettized_conversion(tiny_lcm, tmp_path, monkeypatch):
    from convert.conversion import run
    from convert.options import ConvertOptions

    owner = "p_decoder_up_blocks_0_upsamplers_0_conv_weight_to_fp16_palettized"
    planted = _plant(monkeypatch, "palettize", lambda p: _edit_blob(p, owner, "lut", flip_largest_palette_entry))
    options = ConvertOptions(source=tiny_lcm, out=tmp_path / "out", components=("vae_decoder",), palettize=6)
    with pytest.raises(ParityError, match=r"^VAEDecoder.image: .* \d+\.\d dB PSNR from PyTorch \(needs ≥ 30 dB\)"):
        run(options, progress=lambda line: None)
    assert planted == ["VAEDecoder.palettized.mlpackage"] and not (tmp_path / "out").exists()


def test_no_verify_skips_the_check(tiny_lcm, tmp_path, monkeypatch):
    from convert.__main__ import build_parser
    from convert.conversion import run
    from convert.options import ConvertOptions

    assert build_parser().parse_args(["src", "--out", "o", "--no-verify"]).no_verify
    _plant(monkeypatch, "to_mlpackage", _swap_decoder_colours)
    lines: list[str] = []
    run(ConvertOptions(source=tiny_lcm, out=tmp_path / "out", components=("vae_decoder",), verify=False),
        progress=lines.append)
    assert not any("executed" in line for line in lines)
    assert all(p.check == "traced_vs_eager" for p in load_manifest(tmp_path / "out").require("VAEDecoder").parity)
