"""`generate` on hostile model folders: no code runs, no hang, one line and exit code 2 (issue 11)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from security.hostile_helpers import edit_index, one_line_error, write_payload

ROOT = Path(__file__).resolve().parents[2]
UNET_WEIGHTS = Path("unet") / "diffusion_pytorch_model.safetensors"


# -- class 1: code named by a model folder ---------------------------------------------------
@pytest.mark.parametrize("key, entry", [
    ("unet", ["this", "UNet2DConditionModel"]),  # any installed module
    ("unet", ["os", "system"]),
    ("unet", ["diffusers", "LCMScheduler"]),  # a real class, but not a UNet (and no weights loader for it)
    ("text_encoder", ["transformers", "AutoModel"]),  # Auto* classes honour auto_map
    ("tokenizer", ["transformers", "AutoTokenizer"]),
    ("scheduler", ["payload", "Payload"]),
    ("feature_extractor", ["payload", "Payload"]),  # a component the app never loads is still refused
    ("my_module", ["payload", "Payload"]),  # an unknown component
])
def test_classes_outside_the_allow_list_are_refused(demo_copy, marker, generate_fails, capsys, key, entry):
    write_payload(demo_copy, "payload", marker)
    write_payload(demo_copy.parent, "payload", marker)
    edit_index(demo_copy, **{key: entry})
    line = generate_fails(demo_copy)
    assert f"names {entry[0]}.{entry[1]} for {key}" in line and "Refusing" in line
    assert not marker.exists()
    assert "Beautiful is better than ugly" not in capsys.readouterr().out  # `import this` never ran


def test_a_custom_pipeline_class_is_refused(demo_copy, marker, generate_fails):
    write_payload(demo_copy, "pipeline", marker)
    edit_index(demo_copy, _class_name=["pipeline", "Payload"])
    assert "custom pipeline" in generate_fails(demo_copy)
    assert not marker.exists()


@pytest.mark.parametrize("entry", [["diffusers"], [1, 2], "unet"])
def test_a_malformed_index_entry_is_one_line(demo_copy, generate_fails, entry):
    edit_index(demo_copy, unet=entry)
    line = generate_fails(demo_copy)
    assert "model_index.json" in line or "missing unet" in line


def test_payload_beside_the_model_never_runs_with_python_m_from_the_parent(demo_copy, marker, tmp_path):
    """`python -m` puts the working directory on sys.path: a payload.py there must still never be imported."""
    write_payload(demo_copy.parent, "payload", marker)
    write_payload(demo_copy, "payload", marker)
    edit_index(demo_copy, unet=["payload", "Payload"])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "lcm_desktop", "generate", "x", "--model", "demo", "--steps", "1", "--out",
         str(tmp_path / "out")], cwd=demo_copy.parent, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "payload.Payload" in one_line_error(proc.stderr)
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_auto_map_in_a_config_never_runs_code(demo_copy, marker, tmp_path, capsys):
    """transformers' auto_map / trust_remote_code: the engine loads concrete classes, so it is inert."""
    from lcm_desktop.cli import main

    for folder in ("text_encoder", "tokenizer", "unet"):
        write_payload(demo_copy / folder, "payload", marker)
    config = demo_copy / "text_encoder" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()),
                                  "auto_map": {"AutoModel": "payload.Payload", "AutoConfig": "payload.Payload"}}))
    tok = demo_copy / "tokenizer" / "tokenizer_config.json"
    auto_map = {"AutoTokenizer": ["payload.Payload", None]}
    tok.write_text(json.dumps({**json.loads(tok.read_text()), "auto_map": auto_map}))
    out = tmp_path / "out"
    assert main(["generate", "a red circle", "--model", str(demo_copy), "--steps", "1", "--seed", "1",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    assert len(list(out.glob("*.png"))) == 1
    assert not marker.exists()


# -- class 2: links and special files --------------------------------------------------------
def test_weights_linked_to_a_device_are_refused(demo_copy, generate_fails):
    (demo_copy / UNET_WEIGHTS).unlink()
    os.symlink("/dev/zero", demo_copy / UNET_WEIGHTS)
    line = generate_fails(demo_copy)
    assert "diffusion_pytorch_model.safetensors is a device, not a regular file" in line


def _generate_in_a_thread(fifo: Path, *args) -> int:
    """The CLI in-process on a thread; a regression that blocks on ``fifo`` fails the test instead of hanging it
    (after 120 s the test opens the pipe's write end, so the blocked reader sees end of file and returns)."""
    import contextlib
    import threading

    from lcm_desktop.cli import main

    result = {}

    def run() -> None:
        try:
            result["code"] = main([str(a) for a in args])
        except BaseException as exc:  # reported by the assertions below
            result["code"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    if thread.is_alive():
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=60)
        pytest.fail(f"generate blocked reading the FIFO {fifo.name}")
    return result["code"]


@pytest.mark.parametrize("relative", [UNET_WEIGHTS, Path("unet/config.json"), Path("tokenizer/vocab.json"),
                                      Path("scheduler/scheduler_config.json"), Path("model_index.json"),
                                      Path("lcm_desktop.json")])
def test_a_fifo_in_place_of_a_model_file_fails_at_once(demo_copy, tmp_path, capsys, relative):
    """A FIFO would block a reader forever: generate runs on a thread that the test can unblock, so a regression
    fails, not hangs (in-process: six child processes importing torch cost ~30 s of the suite)."""
    (demo_copy / relative).unlink()
    os.mkfifo(demo_copy / relative)
    code = _generate_in_a_thread(demo_copy / relative, "generate", "x", "--model", demo_copy, "--steps", "1",
                                 "--out", tmp_path / "out")
    err = capsys.readouterr().err
    if relative.name == "lcm_desktop.json":  # optional recommendations: ignored, the image is made
        assert code == 0, err
        assert len(list((tmp_path / "out").glob("*.png"))) == 1
        return
    assert code == 2, err
    assert f"{relative.name} is a named pipe (FIFO), not a regular file" in one_line_error(err)


# -- class 5: malformed files, one line each --------------------------------------------------
def _safetensors_with_header(path: Path, header: bytes) -> None:
    path.write_bytes(struct.pack("<Q", len(header)) + header)


@pytest.mark.parametrize("relative, content, expected", [
    ("unet/config.json", b'{"sample_size": 8,', "unet/config.json is not valid JSON"),
    ("vae/config.json", b"[1, 2]", "vae/config.json holds a JSON list where a JSON object is expected"),
    ("text_encoder/config.json", b"\xff\xfe{}", "text_encoder/config.json is not UTF-8"),
    ("scheduler/scheduler_config.json", '{"beta_schedule": "lin\u00e9ar"}'.encode("latin-1"),
     "scheduler/scheduler_config.json is not UTF-8"),
    ("model_index.json", b'[["diffusers", "UNet2DConditionModel"]]', "demo/model_index.json holds a JSON list"),
    ("model_index.json", b"", "demo/model_index.json is not valid JSON"),
    ("tokenizer/vocab.json", b'{"a": 1,,}', "tokenizer/vocab.json is not valid JSON"),
    ("tokenizer/vocab.json", b'["a", "b"]', "tokenizer/vocab.json holds a JSON list"),
    ("tokenizer/merges.txt", b"#version: 0.2\n\xff\xff\n", "tokenizer/merges.txt is not UTF-8"),
    ("tokenizer/tokenizer_config.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("unet/config.json", b"9" * 5000, "unet/config.json is not valid JSON"),  # past Python's int-digits limit
])
def test_malformed_json_and_text_is_one_line(demo_copy, generate_fails, relative, content, expected):
    (demo_copy / relative).write_bytes(content)
    line = generate_fails(demo_copy)
    assert expected in line
    assert "download" not in line  # a user's own folder is not told to re-download


@pytest.mark.parametrize("header, expected", [
    (b"[1, 2, 3]", "holds a JSON list where a JSON object is expected"),
    (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": "x"}}', "has no valid data offsets"),
    (b'{"w": 5}', "has no valid data offsets"),
    (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4000000000]}}', "truncated"),
])
def test_malformed_safetensors_headers_are_one_line(demo_copy, generate_fails, header, expected):
    _safetensors_with_header(demo_copy / UNET_WEIGHTS, header)
    line = generate_fails(demo_copy)
    assert "unet/diffusion_pytorch_model.safetensors" in line and expected in line


@pytest.mark.parametrize("vocab", [{"a": "not an id"}, {}])
def test_a_vocabulary_the_tokenizer_cannot_use_is_one_line(demo_copy, generate_fails, vocab):
    (demo_copy / "tokenizer" / "vocab.json").write_text(json.dumps(vocab))
    line = generate_fails(demo_copy)
    assert "tokenizer" in line and "download" not in line


def test_a_config_the_model_class_rejects_is_one_line(demo_copy, generate_fails):
    config = demo_copy / "unet" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "block_out_channels": "wide"}))
    assert "The unet of demo could not be loaded" in generate_fails(demo_copy)


def test_a_hugging_face_cache_file_is_told_to_download_again(tmp_path):
    from lcm_desktop.core.model_files import repair_advice

    cached = tmp_path / "hub" / "models--org--name" / "snapshots" / ("a" * 40) / "unet" / "config.json"
    assert "download it again" in repair_advice(cached)
    assert "download" not in repair_advice(tmp_path / "mine" / "unet" / "config.json")


def test_a_fifo_tiny_decoder_or_lora_fails_at_once(demo_copy, tmp_path, generate_fails, cli_fails):
    taesd = tmp_path / "taesd"
    taesd.mkdir()
    (taesd / "config.json").write_text("{}")
    os.mkfifo(taesd / "diffusion_pytorch_model.safetensors")
    line = cli_fails("generate", "x", "--model", demo_copy, "--steps", "1", "--tiny-decoder", taesd,
                     "--out", tmp_path / "out")
    assert "diffusion_pytorch_model.safetensors is a named pipe (FIFO)" in line
    lora = demo_copy / "lcm_lora" / "pytorch_lora_weights.safetensors"
    lora.parent.mkdir()
    os.mkfifo(lora)
    assert "lcm_lora/pytorch_lora_weights.safetensors is a named pipe (FIFO)" in generate_fails(demo_copy)
