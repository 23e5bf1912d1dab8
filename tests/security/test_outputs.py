"""Nothing the user has is replaced by surprise, settings survive any prompt, leftovers go, words dropped are said.

Each CLI case asserts the exit code, one line on stderr without a traceback, and that no file was lost.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from PIL import Image

from lcm_desktop import cli
from lcm_desktop.cli import generate as generate_command
from lcm_desktop.core.atomic import clean_stale_parts, publish_file
from lcm_desktop.core.metadata import JSON_KEY, ImageParameters, read_png_parameters, save_png
from lcm_desktop.engine.prompt_fit import fit_prompt


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str, needle: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in err


# -- class 3: no silent overwrite ---------------------------------------------------------------
def test_same_second_same_seed_default_names_never_collide(tiny_lcm, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(
        generate_command.time, "strftime", lambda fmt: "20261130-120000"
    )  # both runs "in the same second"
    out = tmp_path / "imgs"
    argv = ["generate", "a red circle", "--model", tiny_lcm, "--seed", "5", "--steps", "1", "--out", out, "--quiet"]
    first = _run(capsys, *argv)
    second = _run(capsys, *argv)
    assert first[0] == second[0] == 0
    paths = [first[1].strip(), second[1].strip()]
    assert paths[0] != paths[1] and paths[1].endswith("20261130-120000-5-2.png")
    assert sorted(p.name for p in out.iterdir()) == ["20261130-120000-5-2.png", "20261130-120000-5.png"]


def test_concurrent_exclusive_saves_all_land(tmp_path):
    """Eight writers racing for one name: the file is created exclusively, so exactly one wins it."""
    target = tmp_path / "same.png"
    results: list[str] = []
    barrier = threading.Barrier(8)

    def writer(i: int) -> None:
        barrier.wait()
        try:
            publish_file(target, lambda h: h.write(f"writer {i}".encode()))
            results.append(f"won {i}")
        except FileExistsError:
            results.append("lost")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.startswith("won")]
    assert len(winners) == 1 and results.count("lost") == 7
    assert target.read_text() == f"writer {winners[0].split()[1]}"
    assert [p.name for p in tmp_path.iterdir()] == ["same.png"]  # no temp files left


def test_out_onto_an_existing_file_needs_overwrite(tiny_lcm, tmp_path, capsys):
    existing = tmp_path / "holiday.png"
    existing.write_bytes(b"my photo")
    code, out, err = _run(capsys, "generate", "a cat", "--model", tiny_lcm, "--steps", "1", "--out", existing,
                          "--quiet")
    assert code == 2 and out == ""
    _one_line_error(err, "already exists; pass --overwrite")
    assert existing.read_bytes() == b"my photo"
    code, out, _ = _run(capsys, "generate", "a cat", "--model", tiny_lcm, "--steps", "1", "--out", existing,
                        "--quiet", "--overwrite")
    assert code == 0 and out.strip() == str(existing)
    assert read_png_parameters(existing).prompt == "a cat"


def test_out_naming_a_folder_fails_before_any_work(tiny_lcm, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "x.png"
    folder.mkdir()
    (folder / "inside.txt").write_text("mine")
    from lcm_desktop.engine.engine import Engine

    monkeypatch.setattr(Engine, "load", lambda self: pytest.fail("the model was loaded before --out was checked"))
    code, _, err = _run(capsys, "generate", "a cat", "--model", tiny_lcm, "--out", folder, "--quiet")
    assert code == 2
    _one_line_error(err, "is a folder, not an image file")
    assert "disk space" not in err and (folder / "inside.txt").read_text() == "mine"


def test_batch_onto_existing_numbered_files_is_refused_whole(tiny_lcm, tmp_path, capsys):
    (tmp_path / "set-2.png").write_bytes(b"keep")
    code, _, err = _run(capsys, "generate", "a cat", "--model", tiny_lcm, "--steps", "1", "--batch", "2",
                        "--out", tmp_path / "set.png", "--quiet")
    assert code == 2
    _one_line_error(err, "set-2.png already exists")
    assert (tmp_path / "set-2.png").read_bytes() == b"keep" and not (tmp_path / "set-1.png").exists()


# -- class 4: settings that round-trip ------------------------------------------------------------
@pytest.mark.parametrize("prompt", [
    "a cat\nNegative prompt: a dog",
    "a cat\nSteps: 9, Sampler: Euler, CFG scale: 3, Seed: 1, Size: 8x8",
    'quotes " and \\ backslashes, commas: colons\n\nand blank lines',
])
def test_any_prompt_round_trips_through_the_json_chunk(tmp_path, prompt):
    params = ImageParameters(prompt=prompt, negative_prompt="blurry\nSteps: 2", steps=4, guidance_scale=8.5,
                             seed=42, width=64, height=64, model="lcm-demo", model_hash="0123456789",
                             extra={"Hires upscale": "2"}, strength=0.5)
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "p.png", params)
    assert read_png_parameters(path) == params
    with Image.open(path) as image:  # AUTOMATIC1111's chunk is still there for other tools
        assert image.info["parameters"].startswith(prompt.split("\n")[0])
        assert '"version": 1' in image.info[JSON_KEY]


@pytest.mark.parametrize("chunk", [
    '{"version": 1, "prompt": 5}',
    '{"version": 1, "seed": "x"}',
    '{"version": 1, "steps": true}',
    '{"version": 1, "extra": {"a": [1]}}',
    '{"version": 2, "prompt": "future"}',
    '["a", "list"]',
    "[" * 100_000 + "]" * 100_000,
    "not json",
    '{"version": 1, "prompt": "' + "x" * 1_100_000 + '"}',
])
def test_a_hostile_json_chunk_falls_back_to_the_text(tmp_path, chunk):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 4, Sampler: LCM, Seed: 3")
    info.add_itxt(JSON_KEY, chunk)
    path = tmp_path / "hostile.png"
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    params = read_png_parameters(path)
    assert (params.prompt, params.steps, params.seed) == ("a cat", 4, 3)


def test_cli_images_carry_the_exact_request(tiny_lcm, tmp_path, capsys):
    prompt = "a red circle\nNegative prompt: blue\nSteps: 30"
    code, out, _ = _run(capsys, "generate", prompt, "--model", tiny_lcm, "--seed", "11", "--steps", "2",
                        "--out", tmp_path / "p.png", "--quiet")
    assert code == 0
    params = read_png_parameters(out.strip())
    assert (params.prompt, params.negative_prompt, params.steps, params.seed) == (prompt, "", 2, 11)


# -- class 7: leftovers and permissions -----------------------------------------------------------
def test_stale_temp_files_are_cleaned_and_fresh_ones_kept(tmp_path):
    stale, fresh = tmp_path / ".old.1234abcd.png.part", tmp_path / ".new.5678abcd.png.part"
    for f in (stale, fresh):
        f.write_bytes(b"half")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    (tmp_path / "keep.png.part").write_bytes(b"not hidden: not ours")
    assert clean_stale_parts(tmp_path) == 1
    assert not stale.exists() and fresh.exists() and (tmp_path / "keep.png.part").exists()


def test_cli_start_removes_a_crashed_save(tiny_lcm, tmp_path, capsys):
    out = tmp_path / "imgs"
    out.mkdir()
    crashed = out / ".20261130-101010-1.ab12cd34.png.part"
    crashed.write_bytes(b"\x89PNG half")
    hour_ago = time.time() - 3600
    os.utime(crashed, (hour_ago, hour_ago))
    code, _, _ = _run(capsys, "generate", "a cat", "--model", tiny_lcm, "--steps", "1", "--out", out, "--quiet")
    assert code == 0 and not crashed.exists() and len(list(out.glob("*.png"))) == 1


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_images_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = save_png(Image.new("RGB", (4, 4)), tmp_path / "u.png", ImageParameters(prompt="p"))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


# -- class 8: truncation said out loud -----------------------------------------------------------
def test_fit_prompt_cuts_at_a_whole_word():
    count = lambda text: 2 + len(text.split())  # noqa: E731 - one token a word, plus start and end
    fit = fit_prompt("one two three four five", count, 5)
    assert (fit.used, fit.dropped_words, fit.truncated) == ("one two three", 2, True)
    assert fit_prompt("short", count, 5).used == "short" and not fit_prompt("short", count, 5).truncated
    assert fit_prompt("   ", count, 5).used == "   "


def test_a_long_prompt_is_kept_whole_and_recorded_as_used(tiny_lcm, tmp_path, capsys):
    """PyTorch encodes a prompt past 77 tokens in chunks (nothing dropped, nothing said); the PNG records it
    whole and reproduces the image.  (An old Core ML package cuts at a word: tests/engine/test_coreml_prompts.py.)"""
    words = ("a red circle on a blue background top left " * 12).split()  # 108 words, one token each
    prompt = " ".join(words)
    code, out, err = _run(capsys, "generate", prompt, "--model", tiny_lcm, "--seed", "3", "--steps", "2",
                          "--out", tmp_path / "long.png", "--quiet")
    assert code == 0 and "warning" not in err
    recorded = read_png_parameters(out.strip()).prompt
    assert recorded == prompt
    code, out2, err2 = _run(capsys, "generate", recorded, "--model", tiny_lcm, "--seed", "3", "--steps", "2",
                            "--out", tmp_path / "again.png", "--quiet")
    assert code == 0
    with Image.open(out.strip()) as a, Image.open(out2.strip()) as b:
        assert a.tobytes() == b.tobytes()


def test_an_empty_import_name_is_refused_not_replaced(tiny_lcm, capsys):
    code, out, err = _run(capsys, "models", "import", tiny_lcm, "--name", "")
    assert code == 2 and out == ""
    _one_line_error(err, "`--name` must be 1–64 letters")
    assert "tiny-lcm" not in err
