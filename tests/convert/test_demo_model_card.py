"""The demo model's card (pure rendering, on a literal result) and its evaluation results' JSON."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from convert.demo_model.card import render_card, write_card
from convert.demo_model.results import CEILING, Config, Kind, from_json, to_json


def _scores(colour, background, shape, position, size, secs, misses=None):
    row = {"shape_colour": colour, "background": background, "shape": shape, "position": position, "size": size,
           "sec_per_image": secs}
    if misses is not None:
        row["position_misses"] = misses
    return row


RESULT = {
    "rows": {
        CEILING: _scores(1.0, 1.0, 0.75, 1.0, 1.0, None),
        Config(Kind.LCM, 1, 6.0): _scores(0.9, 1.0, 0.7, 0.8, 0.9, 0.031, {}),
        Config(Kind.LCM, 4, 6.0): _scores(0.96, 1.0, 0.8, 0.85, 0.99, 0.067,
                                          {"bottom left → bottom right": 20, "top left → top right": 14,
                                           "center → top left": 2}),
        Config(Kind.TEACHER, 4, 6.0): _scores(0.8, 0.95, 0.6, 0.7, 0.8, 0.081, {}),
        Config(Kind.TEACHER, 50, 6.0): _scores(1.0, 1.0, 0.825, 0.75, 1.0, 0.843, {}),
    },
    "sweep": {
        Config(Kind.LCM, 4, 1.0): _scores(1.0, 1.0, 0.8, 0.85, 1.0, 0.069, {}),
        Config(Kind.LCM, 4, 8.0): _scores(0.99, 1.0, 0.79, 0.84, 1.0, 0.068, {}),
    },
    "machine": "Test CPU (2 cores, load average 0.5 at the start)",
    "date": "2026-11-30 12:00 UTC",
    "n_prompts": 240,
}
SUMMARY = {"vae": {"steps": 600, "batch": 32}, "distill": {"steps": 3000, "guidance_range": [2.0, 8.0]}}
PARAMS = {"unet": 3.2, "text_encoder": 0.3, "vae": 1.0}
FILES = {"resources/models/lcm-demo/unet/diffusion_pytorch_model.safetensors": 6_450_000}


def _card() -> str:
    return render_card(RESULT, SUMMARY, PARAMS, FILES, 4, 6.0)


def test_the_tables_are_labelled_by_configuration_in_measured_order():
    lines = _card().splitlines()
    assert "| VAE reconstruction of the true picture (ceiling) | 100.0 % | 100.0 % | 75.0 % | 100.0 % | 100.0 % | – |" \
        in lines
    rows = [line.split(" | ")[0] for line in lines if line.startswith("| LCM") or line.startswith("| Teacher")]
    assert rows == ["| LCM, 1 step, guidance 6", "| LCM, 4 steps, guidance 6", "| Teacher DDIM, 4 steps, CFG 6",
                    "| Teacher DDIM, 50 steps, CFG 6", "| LCM, 4 steps, guidance 1", "| LCM, 4 steps, guidance 8"]
    assert "| LCM, 4 steps, guidance 6 | 96.0 % | 100.0 % | 80.0 % | 85.0 % | 99.0 % | 0.067 |" in lines


def test_targets_are_checked_on_the_rows_of_their_configurations():
    card = _card()
    assert "issue" not in card.lower()
    assert "- LCM@4 vs teacher@50, shape colour: 96.0 % vs 100.0 % (-4.0 pp) — met (within 5 pp)" in card
    assert "- LCM@4 vs teacher@50, position: 85.0 % vs 75.0 % (+10.0 pp) — met (within 5 pp)" in card
    assert "- LCM@4 vs teacher@50, shape: 80.0 % vs 82.5 % (-2.5 pp) — met (within 5 pp)" in card
    assert "- LCM@4 above teacher@4 on 4 of 4 attributes" in card
    assert "- 4-step image well under a second: 0.067 s — met" in card
    worse = {**RESULT, "rows": {**RESULT["rows"], Config(Kind.LCM, 4, 6.0): _scores(0.5, 1.0, 0.8, 0.85, 1.0, 0.7)}}
    card = render_card(worse, SUMMARY, PARAMS, FILES, 4, 6.0)
    assert "shape colour: 50.0 % vs 100.0 % (-50.0 pp) — NOT met" in card
    assert "- LCM@4 shape colour ≥ 90 %: 50.0 % — NOT met" in card
    assert "- 4-step image well under a second: 0.700 s — NOT met" in card


def test_limitations_are_read_from_the_results():
    card = _card()
    assert ("puts the shape where asked 85 % of the time (teacher at 50 steps 75 %, chance 20 %); of its 36 misses "
            "the most common are bottom left → bottom right (20), top left → top right (14), center → top left (2).") \
        in card
    # the generated range leaves out the ceiling and the teacher at 4 steps (60 %)
    assert "read as the right shape only 75 % of the time, generated pictures 70–82 %" in card
    assert "no attribute moves by more than 1.0 pp" in card
    limitations = card.split("## Limitations")[1]
    assert "66 %" not in limitations  # an old experiment's number belongs to the training notes, not the results


def test_the_card_names_settings_sizes_and_parameters():
    card = _card()
    assert "recommended **4 steps, guidance scale 6**" in card
    assert "## Architecture (4.50 M parameters)" in card
    assert "| `resources/models/lcm-demo/unet/diffusion_pytorch_model.safetensors` | 6.45 MB |" in card
    assert "— steps 600, batch 32." in card
    assert "guidance scale g ~ U(2.0, 8.0)" in card
    assert "Teacher:" in card and "— not recorded." in card  # no teacher summary given


def test_write_card_replaces_the_file(tmp_path):
    doc = tmp_path / "docs" / "DEMO_MODEL.md"
    write_card(doc, RESULT, SUMMARY, PARAMS, FILES, 4, 6.0)
    write_card(doc, RESULT, SUMMARY, PARAMS, FILES, 4, 6.0)
    assert doc.read_text(encoding="utf-8") == _card()
    assert [p.name for p in doc.parent.iterdir()] == ["DEMO_MODEL.md"]  # no temp file left behind


def test_results_round_trip_through_json_with_labels_for_readers():
    text = to_json(RESULT)
    assert '"label": "Teacher DDIM, 50 steps, CFG 6"' in text
    assert from_json(text) == RESULT


def test_rendering_the_card_needs_no_torch():
    here = Path(__file__).resolve().parent
    code = (f"import sys; sys.path.insert(0, {str(here)!r}); import test_demo_model_card as t; t._card(); "
            "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=here.parents[1], timeout=60)
