"""The demo model's image-to-image evaluation: its starting pictures, sketches, counting, card section, and
one small run on the built-in model through the app's Engine (which must match the evaluation's pipeline)."""

from __future__ import annotations

import numpy as np
import pytest

from convert.demo_model import card
from convert.demo_model.__main__ import main
from convert.demo_model.analyzer import Verdict, analyze
from convert.demo_model.data import COLOURS, Scene, held_out_scenes
from convert.demo_model.doc_sections import keep_sections, marked, replace_section, sections
from convert.demo_model.img2img_card import render_section, write_section
from convert.demo_model.img2img_eval import (
    PipelinePainter,
    Trial,
    clean_renders,
    run_moves,
    sketch_scenes,
    sketch_score,
    sketches,
    start_pictures,
    tally_sketches,
    tally_trials,
)
from convert.demo_model.img2img_inputs import VARIANTS, clean_mask, iou
from convert.demo_model.ship import RECOMMENDED_GUIDANCE, RECOMMENDED_STEPS
from convert.demo_model.workdir import SHIPPED


@pytest.mark.parametrize("index", range(len(VARIANTS)))
def test_every_start_picture_has_its_shape_elsewhere_than_the_caption(index):
    variant = VARIANTS[index]
    scenes = held_out_scenes()
    starts, images = start_pictures(scenes, variant, index)
    assert len(images) == len(scenes) == 240
    shapes_read = 0
    for asked, start, image in zip(scenes, starts, images):
        seen = analyze(image)
        for attr in ("position", "shape_colour", "shape", "background", "size"):
            assert (getattr(start, attr) != getattr(asked, attr)) == (attr in variant.changed), (attr, asked, start)
        assert start.shape_colour != start.background
        # what the picture shows is the start's, not the caption's (the analyzer on the clean render)
        assert seen.position == start.position != asked.position
        assert seen.shape_colour == start.shape_colour and seen.background == asked.background
        shapes_read += seen.shape == start.shape
    assert shapes_read >= 0.95 * len(scenes)
    # the moved positions are spread over the other four, not one fixed swap
    assert len({(a.position, s.position) for a, s in zip(scenes, starts)}) >= 15
    again = start_pictures(scenes[:5], variant, index)[1]
    assert all(np.array_equal(a, b) for a, b in zip(again, images[:5]))


def test_sketches_are_roughly_the_named_colour_but_not_the_clean_shape():
    scenes = sketch_scenes()
    blobs = sketches(scenes)
    assert len(blobs) == 48 and len({s.caption for s in scenes}) >= 40
    cleans = clean_renders(scenes, blobs)
    for scene, blob, clean in zip(scenes, blobs, cleans):
        seen = analyze(blob.image)
        assert (seen.shape_colour, seen.position, seen.background) == (scene.shape_colour, scene.position,
                                                                       scene.background)
        off = np.abs(np.array(blob.fill) - np.array(COLOURS[scene.shape_colour]))
        assert off.max() >= 9, (scene, blob.fill)  # off the palette (halved at most twice from 18–36)
        assert np.array_equal(blob.image[0, 0], COLOURS[scene.background])  # on the exact background
        mask = (blob.image != blob.image[0, 0]).any(-1)
        overlap = iou(mask, clean_mask(scene.shape, blob.centre, blob.radius))
        assert 0.45 < overlap < 0.97, (scene, overlap)  # roughly the shape, but wobbly
        assert not np.array_equal(blob.image, clean)


def test_trials_are_counted_as_the_start_the_caption_or_neither():
    asked = Scene("red", "circle", "blue", "large", "top left")
    start = Scene("green", "square", "blue", "large", "bottom right")

    def seen(position, colour="red", shape="circle", background="blue"):
        return Verdict(colour, background, shape, position, "large")

    trials = [Trial(asked, start, seen("top left")), Trial(asked, start, seen("bottom right", "green")),
              Trial(asked, start, seen("center", shape="square", background="white")),
              Trial(asked, start, Verdict(None, "blue", None, None, None))]
    row = tally_trials(trials, ("position", "shape_colour", "shape"))
    assert row["n"] == 4 and row["background"] == 0.75
    assert row["position"] == {"start": 0.25, "prompt": 0.25, "neither": 0.5}
    assert row["shape_colour"] == {"start": 0.25, "prompt": 0.5, "neither": 0.25}
    assert row["shape"] == {"start": 0.25, "prompt": 0.5, "neither": 0.25}
    # with no starting picture only the caption can be followed
    assert tally_trials([Trial(asked, None, seen("top left"))], ("position",))["position"]["start"] == 0.0


def test_sketch_scores_tell_a_clean_shape_from_the_sketch():
    scenes = sketch_scenes()[:6]
    blobs = sketches(scenes)
    cleans = clean_renders(scenes, blobs)
    for scene, blob, clean in zip(scenes, blobs, cleans):
        on_clean, on_sketch = sketch_score(scene, blob, clean), sketch_score(scene, blob, blob.image)
        assert on_clean["iou"] == 1.0 and on_clean["colour_error"] == 0.0 and on_clean["cleaner"]
        assert on_sketch["iou_sketch"] == 1.0 and not on_sketch["cleaner"] and on_sketch["colour_error"] > 9
    empty = sketch_score(scenes[0], blobs[0], np.full_like(cleans[0], COLOURS[scenes[0].background]))
    assert empty["colour_error"] is None and empty["iou"] == 0.0 and not empty["clean"]
    scores = [{"shape_colour": True, "shape": s, "position": True, "size": True, "clean": s, "cleaner": c,
               "colour_error": e, "iou": i, "iou_sketch": 0.5} for s, c, e, i in
              ((True, True, 10.0, 1.0), (False, False, None, 0.5), (True, False, 20.0, 0.0), (True, True, 30.0, 0.5))]
    row = tally_sketches(scores)
    assert row == {"n": 4, "shape_colour": 1.0, "shape": 0.75, "position": 1.0, "size": 1.0, "clean": 0.75,
                   "cleaner": 0.5, "colour_error": 20.0, "iou": 0.5, "iou_sketch": 0.5}


def _tally(start, prompt):
    return {"start": start, "prompt": prompt, "neither": 1 - start - prompt}


RESULT = {
    "command": "python -m convert.demo_model img2img", "n_captions": 240, "n_held_out": 240, "steps": 4,
    "guidance": 6.0, "machine": "Test CPU", "date": "2026-11-30 12:00 UTC", "wall_s": 61.4, "n_images": 2304,
    "moves": {
        "moved": {"changed": ["position"], "rows": [
            {"strength": 0.0, "n": 240, "background": 1.0, "position": _tally(1.0, 0.0)},
            {"strength": 0.3, "n": 240, "background": 1.0, "position": _tally(0.9, 0.1)},
            {"strength": 1.0, "n": 240, "background": 1.0, "position": _tally(0.05, 0.85)}]},
        "other": {"changed": ["shape"], "rows": [
            {"strength": 0.0, "n": 240, "background": 1.0, "shape": _tally(1.0, 0.0)},
            {"strength": 0.3, "n": 240, "background": 1.0, "shape": _tally(0.2, 0.7)},
            {"strength": 1.0, "n": 240, "background": 1.0, "shape": _tally(0.25, 0.75)}]},
    },
    "text_to_image": {"n": 240, "background": 1.0, "position": _tally(0.0, 0.846), "shape": _tally(0.0, 0.767)},
    "sketches": {"rows": [{"strength": 0.0, "n": 48, "shape_colour": 1.0, "shape": 0.85, "position": 1.0, "size": 1.0,
                           "clean": 0.85, "cleaner": 0.0, "colour_error": 43.4, "iou": 0.82, "iou_sketch": 1.0}],
                 "ceiling": None},
}


def test_the_section_reports_the_rows_and_the_trend_it_measured():
    text = render_section(RESULT)
    assert "| strength 0.3 (15 schedule points) | 90.0 % | 10.0 % | 100.0 % |" in text
    assert "| no starting picture (text-to-image) | – | 84.6 % | 100.0 % |" in text
    assert "| the sketch itself | 100.0 % | 85.0 % | 100.0 % | 100.0 % | 85.0 % | 43.4 | 0.82 | 1.00 | 0.0 % |" in text
    assert ("- position (moved): the start's kept 90.0 % → 5.0 %, the caption's followed 10.0 % → 85.0 % from "
            "strength 0.3 to 1; monotone.") in text
    assert "- shape (other): the start's kept 20.0 % → 25.0 %" in text and "; NOT monotone." in text
    assert "240 of the\n240 held-out captions" in text and "Wall time: 61 s for\n2304 generated images" in text


def test_the_img2img_section_survives_a_rerun_of_eval(tmp_path, monkeypatch):
    doc = tmp_path / "DEMO_MODEL.md"
    write_section(doc, RESULT)  # no card yet: the section alone
    monkeypatch.setattr(card, "render_card", lambda *args: "# Card v1\n\n## Evaluation\nold table\n")
    card.write_card(doc, {}, {}, {}, {}, 4, 6.0)
    first = doc.read_text()
    assert first.startswith("# Card v1\n") and list(sections(first)) == ["img2img"]
    monkeypatch.setattr(card, "render_card", lambda *args: "# Card v2\n\n## Evaluation\nnew table\n")
    card.write_card(doc, {}, {}, {}, {}, 4, 6.0)
    second = doc.read_text()
    assert "old table" not in second and "new table" in second
    assert sections(second) == sections(first) and "| strength 0.3 (15 schedule points) |" in second
    # rerunning img2img replaces only its own block
    write_section(doc, {**RESULT, "wall_s": 99.0})
    third = doc.read_text()
    assert third.startswith("# Card v2\n\n## Evaluation\nnew table\n") and third.count("<!-- section:img2img -->") == 1
    assert "Wall time: 99 s" in third and "Wall time: 61 s" not in third


def test_marked_sections_are_replaced_one_by_one_and_carried_over():
    text = "head\n" + marked("a", "A1") + "middle\n" + marked("b", "B1")
    assert replace_section(text, "a", "A2") == "head\n" + marked("a", "A2") + "middle\n" + marked("b", "B1")
    assert replace_section("head\n", "c", "C") == "head\n\n" + marked("c", "C")
    assert keep_sections("new\n" + marked("b", "B9"), text) == "new\n" + marked("b", "B9") + "\n" + marked("a", "A1")


def test_captions_is_an_img2img_option():
    with pytest.raises(SystemExit):
        main(["eval", "--captions", "3"])
    with pytest.raises(SystemExit):
        main(["img2img", "--captions", "0"])


class EnginePainter:
    """The app's own path: Engine(TorchLoader) on the shipped folder, the model's default guidance."""

    def __init__(self):
        from lcm_desktop.engine.engine import Engine
        from lcm_desktop.engine.loaders import TorchLoader

        self.engine = Engine(TorchLoader(SHIPPED))
        self.guidance: list[float] = []

    def __call__(self, prompts, starts, strength, seeds):
        from PIL import Image

        from lcm_desktop.core.request import GenerationRequest

        out = []
        for prompt, start, seed in zip(prompts, starts, seeds):
            result = self.engine.generate(GenerationRequest(prompt, steps=RECOMMENDED_STEPS, seed=seed,
                                                            init_image=Image.fromarray(start), strength=strength))
            self.guidance.append(result.request.guidance_scale)
            out.append(np.asarray(result.images[0]))
        return out


def test_the_app_engine_makes_the_evaluation_pipelines_pixels_on_the_built_in_model():
    import torch

    torch.set_num_threads(1)
    scenes = held_out_scenes()[:2]
    _, starts = start_pictures(scenes, VARIANTS[1], 1)
    seeds = [10_000, 10_001]
    engine = EnginePainter()
    ours = engine([s.caption for s in scenes], starts, 0.7, seeds)
    theirs = PipelinePainter(batch=2)([s.caption for s in scenes], starts, 0.7, seeds)
    assert engine.guidance == [RECOMMENDED_GUIDANCE] * 2
    for a, b, start in zip(ours, theirs, starts):
        assert a.shape == b.shape == (64, 64, 3)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
        assert np.abs(a.astype(int) - start.astype(int)).mean() > 2  # the picture was really redrawn
    # and the evaluation runs end to end on it: 2 captions × 1 strength, both variants
    moves = run_moves(engine, scenes, strengths=(0.7,))
    for variant in VARIANTS:
        rows = moves[variant.name]["rows"]
        assert [r["strength"] for r in rows] == [0.0, 0.7] and rows[1]["n"] == 2
        assert rows[0]["position"] == {"start": 1.0, "prompt": 0.0, "neither": 0.0}
        assert set(rows[1]) == {"strength", "n", "background", *variant.changed}
        assert all(0.0 <= rows[1][a][k] <= 1.0 for a in variant.changed for k in ("start", "prompt", "neither"))
        assert sum(rows[1]["position"].values()) == pytest.approx(1.0)
    # the moved variant's outputs are the images the painter makes: recount them by hand
    _, moved_starts = start_pictures(scenes, VARIANTS[0], 0)
    outputs = engine([s.caption for s in scenes], moved_starts, 0.7, seeds)
    prompt = sum(analyze(o).position == s.position for o, s in zip(outputs, scenes)) / 2
    assert moves[VARIANTS[0].name]["rows"][1]["position"]["prompt"] == prompt


def test_the_blob_drawer_is_seeded():
    a = sketches(sketch_scenes()[:3])
    b = sketches(sketch_scenes()[:3])
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert not np.array_equal(a[0].image, a[1].image)
