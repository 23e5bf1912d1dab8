"""ControlSpec rules, control folder checks (no torch) and the preprocessors on fixed inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lcm_desktop.core.control import ControlSpec, Preprocess
from lcm_desktop.core.control_folder import (
    BaseUnet,
    ControlKind,
    check_control_fits,
    inspect_control_folder,
    is_control_folder,
)
from lcm_desktop.core.errors import InvalidRequestError, ModelFormatError, ModelNotFoundError, UnsafeModelError
from lcm_desktop.core.preprocess import canny, preprocess_control, scribble
from lcm_desktop.core.request import GenerationRequest


def test_spec_defaults_and_validation():
    spec = ControlSpec("ring.png", "lcm-demo-scribble")
    assert spec.image == Path("ring.png") and (spec.scale, spec.start, spec.end) == (1.0, 0.0, 1.0)
    assert spec.preprocess is Preprocess.NONE
    assert ControlSpec("a.png", "m", preprocess="canny").preprocess is Preprocess.CANNY
    for kwargs, field in [({"scale": -0.1}, "control scale"), ({"scale": 9}, "control scale"),
                          ({"start": 0.5, "end": 0.5}, "control start"), ({"end": 1.5}, "control end"),
                          ({"preprocess": "depth"}, "control preprocess"), ({"scale": float("nan")}, "control scale")]:
        with pytest.raises(InvalidRequestError) as info:
            ControlSpec("a.png", "m", **kwargs)
        assert info.value.field == field
    with pytest.raises(InvalidRequestError):
        ControlSpec(42, "m")
    with pytest.raises(InvalidRequestError):
        ControlSpec("a.png", " ")


def test_applies_at_is_diffusers_controlnet_keep():
    spec = ControlSpec("a.png", "m", start=0.25, end=0.75)
    assert [spec.applies_at(i, 4) for i in range(4)] == [False, True, True, False]
    assert all(ControlSpec("a.png", "m").applies_at(i, 3) for i in range(3))


def test_request_takes_controls_as_a_tuple_and_at_most_four():
    spec = ControlSpec("a.png", "m")
    assert GenerationRequest("x", controls=[spec]).controls == (spec,)
    with pytest.raises(InvalidRequestError):
        GenerationRequest("x", controls=(spec,) * 5)
    with pytest.raises(InvalidRequestError):
        GenerationRequest("x", controls=("a.png",))


def _folder(tmp_path: Path, config: dict, weights: str = "diffusion_pytorch_model.safetensors") -> Path:
    folder = tmp_path / "ctl"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (folder / weights).write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 4)
    return folder


SD_CONTROLNET = {"_class_name": "ControlNetModel", "cross_attention_dim": 768,
                 "block_out_channels": [320, 640, 1280, 1280]}
SD = BaseUnet("sd15", "sd", 768, (320, 640, 1280, 1280))
SDXL = BaseUnet("sdxl", "sdxl", 2048, (320, 640, 1280))


def test_controlnet_folder_is_described_and_fits_its_family(tmp_path):
    control = inspect_control_folder(_folder(tmp_path, SD_CONTROLNET))
    assert (control.kind, control.family, control.cross_attention_dim) == (ControlKind.CONTROLNET, "sd", 768)
    assert is_control_folder(control.path)
    check_control_fits(control, SD)
    with pytest.raises(ModelFormatError) as info:
        check_control_fits(control, SDXL)
    assert "SD1.5-class" in str(info.value) and "SDXL-class" in str(info.value) and "\n" not in str(info.value)


def test_adapter_folder_fits_by_channels(tmp_path):
    xl = inspect_control_folder(_folder(tmp_path, {"_class_name": "T2IAdapter", "adapter_type": "full_adapter_xl",
                                                   "channels": [320, 640, 1280, 1280], "in_channels": 3}))
    assert (xl.kind, xl.family) == (ControlKind.ADAPTER, "sdxl")
    check_control_fits(xl, SDXL)
    narrow = BaseUnet("tiny", "sdxl", 64, (16, 32))
    with pytest.raises(ModelFormatError, match="channels"):
        check_control_fits(xl, narrow)


@pytest.mark.parametrize(("config", "weights", "error", "words"), [
    ({"_class_name": "UNet2DConditionModel"}, "x.safetensors", UnsafeModelError, "must be one of"),
    ({"_class_name": "os.system"}, "x.safetensors", UnsafeModelError, "os.system"),
    (SD_CONTROLNET, "diffusion_pytorch_model.bin", UnsafeModelError, "pickle"),
    ({"_class_name": "T2IAdapter", "adapter_type": "mystery"}, "x.safetensors", ModelFormatError, "unknown type"),
])
def test_bad_control_folders_are_refused_in_one_line(tmp_path, config, weights, error, words):
    folder = _folder(tmp_path, config, weights)
    if weights.endswith(".bin"):
        (folder / weights).write_bytes(b"pickle")
    with pytest.raises(error) as info:
        inspect_control_folder(folder)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_missing_control_folder(tmp_path):
    with pytest.raises(ModelNotFoundError):
        inspect_control_folder(tmp_path / "nope")
    assert not is_control_folder(tmp_path)


def test_scribble_keeps_white_on_black_and_inverts_paper():
    lines = Image.new("RGB", (32, 32), (0, 0, 0))
    ImageDraw.Draw(lines).line((4, 4, 28, 28), fill=(255, 255, 255), width=2)
    kept = np.asarray(scribble(lines))
    assert kept.shape == (32, 32, 3) and kept[16, 16, 0] == 255 and kept[2, 28, 0] == 0
    paper = Image.new("RGB", (32, 32), (250, 250, 250))
    ImageDraw.Draw(paper).line((4, 4, 28, 28), fill=(10, 10, 10), width=2)
    inverted = np.asarray(preprocess_control(paper, "scribble"))
    assert inverted[16, 16, 0] == 245 and inverted[2, 28, 0] == 5  # dark line → bright, paper → dark


def test_canny_finds_the_edges_of_a_square():
    picture = Image.new("RGB", (64, 64), (20, 40, 200))
    ImageDraw.Draw(picture).rectangle((16, 16, 47, 47), fill=(230, 220, 30))
    edges = np.asarray(canny(picture))[:, :, 0]
    assert set(np.unique(edges)) == {0, 255}
    assert edges[32, 14:19].max() == 255 and edges[32, 45:50].max() == 255  # left and right sides
    assert edges[32, 24:40].max() == 0 and edges[2:10, 2:10].max() == 0  # flat inside and outside
    assert np.asarray(preprocess_control(picture, Preprocess.NONE)).tolist() == np.asarray(picture).tolist()
