"""The session: the one record → inputs mapping, inputs → request, settings and their migration (no Qt)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tiny_models
from PIL import Image

from lcm_desktop.cli import main
from lcm_desktop.core.errors import InvalidRequestError
from lcm_desktop.core.metadata import ImageParameters, read_png_parameters
from lcm_desktop.core.request import LoraWeight
from lcm_desktop.history import HistoryEntry
from lcm_desktop.session.state import EmptyCanvasError, Session, StartMode, with_style


def test_a_session_needs_no_arguments_and_notifies_only_real_changes():
    session, changes = Session(), []
    session.subscribe(changes.append)
    session.prompt = "a red circle"
    session.prompt = "a red circle"  # the same text: nobody hears it
    session.update(steps=6, strength=0.6)  # 0.6 is the default: not a change
    assert changes == ["prompt", "steps"]


def test_request_from_inputs_with_the_strength_rule_and_the_seed_lock():
    session = Session(prompt="  a red circle ", steps=8, seed=7, seed_locked=True, size=(64, 96),
                      start_mode=StartMode.SKETCH, strength=0.1, styles=(LoraWeight("huge", 3.0),))
    picture = Image.new("RGB", (64, 96))
    request = session.to_request(picture)
    assert request.prompt == "a red circle" and request.seed == 7 and (request.width, request.height) == (64, 96)
    assert request.steps == 5 and request.strength == 0.1  # 0.1 leaves 5 of the 50 schedule points
    assert request.init_image is picture and request.loras == (LoraWeight("huge", 3.0),)
    assert session.steps_to_run()[1].startswith("5 of the 8 steps run")
    session.update(start_mode=StartMode.TEXT)
    text = session.to_request(picture)
    assert text.init_image is None and text.strength == 1.0 and text.steps == 8
    session.seed_locked = False
    seeds = {session.to_request().seed for _ in range(4)}
    assert len(seeds) > 1 and session.seed in seeds  # an unlocked seed is drawn anew and shown


def test_bad_inputs_name_the_field():
    with pytest.raises(InvalidRequestError, match="prompt"):
        Session().to_request()
    with pytest.raises(EmptyCanvasError, match="Sketch mode starts from the canvas"):
        Session(prompt="x", start_mode=StartMode.SKETCH).to_request(None)


def test_a_png_restores_every_field_a_style_at_weight_3_too():
    params = ImageParameters(prompt="a blue square <lora:tiny:0.5>", negative_prompt="blurry", steps=6,
                             guidance_scale=2.5, seed=1234, width=64, height=128, model="lcm-demo",
                             loras=(LoraWeight("huge", 3.0),), strength=0.45)
    session = Session(start_mode=StartMode.SKETCH)
    session.restore(ImageParameters.from_json(params.to_json()), find_model={"lcm-demo": "/m/lcm-demo"}.get)
    assert (session.prompt, session.negative_prompt, session.steps, session.guidance_scale) == (
        "a blue square <lora:tiny:0.5>", "blurry", 6, 2.5)
    assert (session.seed, session.seed_locked, session.size, session.strength) == (1234, True, (64, 128), 0.45)
    assert session.start_mode is StartMode.SKETCH  # image-to-image: the current picture mode is kept
    assert session.styles == (LoraWeight("huge", 3.0),) and session.model == "/m/lcm-demo"
    text_only = ImageParameters.parse(params.to_text())  # A1111's text: strength as "Denoising strength"
    assert text_only.strength == 0.45 and "Denoising strength" not in text_only.extra
    session.restore(ImageParameters(prompt="plain", seed=1))
    assert session.start_mode is StartMode.TEXT and session.styles == ()


def test_a_history_row_restores_like_a_png():
    entry = HistoryEntry(1, 0.0, Path("x.png"), "p", "n", 3, 1.5, 99, 64, 64, "m", "cpu", strength=0.3,
                         init_image=Path("start.png"), loras=(("huge", -2.5),))
    session = Session()
    session.restore(entry)
    assert (session.steps, session.seed, session.strength, session.start_mode) == (3, 99, 0.3, StartMode.IMAGE)
    assert session.styles == (LoraWeight("huge", -2.5),)


def test_settings_round_trip_and_migrate_from_the_old_keys():
    session = Session(prompt="p", negative_prompt="n", steps=5, guidance_scale=3.0, strength=0.4,
                      start_mode=StartMode.SKETCH, styles=(LoraWeight("huge", 3.0),), model="/m", backend="mps")
    data = json.loads(json.dumps(session.to_settings()))
    assert data["version"] == 2
    again = Session.from_settings(data)
    assert again.key() == Session(**{**{n: getattr(session, n) for n in
                                        ("prompt", "negative_prompt", "steps", "guidance_scale", "strength",
                                         "start_mode", "styles", "model", "backend")}}).key()
    old = {"model": "/m", "backend": "cpu", "prompt": "old", "negative": "neg", "steps": "6", "guidance": "2.5",
           "strength": "0.35", "start_mode": "Image", "output_folder": "/out", "geometry": b"\x01"}
    migrated = Session.from_settings(old)  # settings.ini's strings, version 1
    assert (migrated.prompt, migrated.negative_prompt) == ("old", "neg")
    assert (migrated.steps, migrated.guidance_scale) == (6, 2.5)
    assert (migrated.strength, migrated.start_mode, migrated.output_folder) == (0.35, StartMode.IMAGE, "/out")
    damaged = Session.from_settings({"version": 2, "steps": "many", "strength": 7, "styles": [["x", "heavy"]]})
    assert (damaged.steps, damaged.strength, damaged.styles) == (Session().steps, Session().strength, ())


def test_with_style_sets_adds_and_removes():
    styles = with_style((), "a", 1.0)
    styles = with_style(styles, "b", 9.0)  # clamped to the request's limit, not a slider's
    assert styles == (LoraWeight("a", 1.0), LoraWeight("b", 4.0))
    assert with_style(styles, "a", None) == (LoraWeight("b", 4.0),)


def test_without_qt_a_cli_png_restores_into_the_request_it_was_made_with(tiny_lcm, tmp_path, capsys):
    style = tiny_models.make_tiny_style(tiny_lcm, tmp_path / "made.safetensors", seed=1)
    assert main(["models", "import", str(style), "--name", "tiny"]) == 0
    start = tmp_path / "start.png"
    Image.new("RGB", (64, 64), (200, 40, 40)).save(start)
    out = tmp_path / "made.png"
    assert main(["generate", "a red circle", "--model", str(tiny_lcm), "--steps", "2", "--seed", "4321",
                 "--guidance", "3.5", "--init-image", str(start), "--strength", "0.5", "--lora", "tiny:3",
                 "--width", "64", "--height", "64", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    script = f"""
import sys
sys.modules["PySide6"] = None  # unimportable
from lcm_desktop.core.metadata import read_png_parameters
from lcm_desktop.session.state import Session
session = Session()
session.restore(read_png_parameters({str(out)!r}))
r = session.to_request(init_image=object.__new__(type("P", (), dict(mode="RGB", size=(64, 64), convert=None))))
print(r.seed, r.steps, r.guidance_scale, r.strength, [(s.name, s.weight) for s in r.loras])
assert "PySide6" not in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None]
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(None, 4) == ["4321", "2", "3.5", "0.5", "[('tiny', 3.0)]\n"]
    assert read_png_parameters(out).strength == 0.5


def test_samplers_restore_and_the_live_tier_runs_one_step_where_the_preset_allows(tiny_lcm, tmp_path):
    import shutil

    from lcm_desktop.core.model_info import describe_model

    info = describe_model(tiny_lcm)
    session = Session(prompt="a red circle", steps=4, seed_locked=True)
    session.restore(ImageParameters.parse("a cat\nSteps: 2, Sampler: TCD, Eta: 0.6, CFG scale: 1, Seed: 3"))
    assert (session.sampler, session.eta) == ("tcd", 0.6)
    request = session.to_request(None, info)
    assert (request.sampler, request.eta, request.steps) == ("tcd", 0.6, 2)
    session.restore(ImageParameters.parse("a cat\nSteps: 2, Sampler: Euler a, CFG scale: 1, Seed: 3"))
    with pytest.raises(InvalidRequestError, match="sampler"):  # Turbo's sampler on a consistency model
        session.to_request(None, info)
    session.update(sampler="hyper-sd", eta=None, steps=4)
    assert session.to_request(None, info, live=True).steps == 1  # the 1-step live tier
    assert session.to_request(None, info).steps == 4  # Generate keeps the chosen steps
    session.sampler = "lcm"
    assert session.to_request(None, info, live=True).steps == 4  # LCM at 1 step is a blur: no tier
    turbo = shutil.copytree(tiny_lcm, tmp_path / "turbo")
    (turbo / "lcm_desktop.json").write_text('{"sampler": "turbo"}')
    turbo_info = describe_model(turbo)
    session.update(sampler="", steps=4)
    assert turbo_info.preset.one_step and session.to_request(None, turbo_info, live=True).steps == 1
