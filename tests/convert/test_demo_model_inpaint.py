"""The demo model's inpainting evaluation: its masks and starts, the counting, the card section, and one small
run on the built-in model through the app's Engine (which must match the evaluation's pipeline + overlay)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convert.demo_model.__main__ import main
from convert.demo_model.analyzer import analyze
from convert.demo_model.data import COLOURS
from convert.demo_model.doc_sections import sections
from convert.demo_model.inpaint_eval import (
    KINDS,
    MASK_SIDE,
    PipelineInpainter,
    corner_mask,
    corner_scenes,
    render_section,
    run,
    starts,
    write_section,
)
from convert.demo_model.ship import RECOMMENDED_GUIDANCE, RECOMMENDED_STEPS
from convert.demo_model.workdir import SHIPPED


def test_corner_scenes_masks_and_starts():
    scenes = corner_scenes()
    assert len(scenes) == 192 and all(s.position != "center" for s in scenes)
    mask = np.asarray(corner_mask("bottom right", blur=0))
    assert mask[-MASK_SIDE:, -MASK_SIDE:].min() == 255 and mask[: 64 - MASK_SIDE].max() == 0
    empty_scenes, empty = starts(scenes[:6], "empty corner")
    assert empty_scenes == [None] * 6 and all(analyze(img).shape is None for img in empty)
    replaced_scenes, replaced = starts(scenes[:6], "shape replaced")
    for asked, start, image in zip(scenes, replaced_scenes, replaced):
        assert start.position == asked.position and start.background == asked.background
        assert start.shape_colour != asked.shape_colour and start.shape != asked.shape
        assert analyze(image).shape_colour == start.shape_colour
        outside = np.asarray(corner_mask(asked.position)) == 0
        assert (image[outside] == np.array(COLOURS[asked.background], np.uint8)).all()  # the shape is in the mask


class EngineInpainter:
    """The app's own path: Engine(TorchLoader) on the shipped folder with the mask, before any overlay."""

    def __init__(self):
        from lcm_desktop.engine.engine import Engine
        from lcm_desktop.engine.loaders import TorchLoader

        self.engine = Engine(TorchLoader(SHIPPED))

    def __call__(self, prompts, images, masks, seeds, keep_generated=True):
        from lcm_desktop.core.mask import Inpaint
        from lcm_desktop.core.request import GenerationRequest

        out = []
        for prompt, image, mask, seed in zip(prompts, images, masks, seeds):
            request = GenerationRequest(prompt, steps=RECOMMENDED_STEPS, guidance_scale=RECOMMENDED_GUIDANCE,
                                        seed=seed, init_image=Image.fromarray(image), strength=1.0,
                                        inpaint=Inpaint(mask=mask, blur=0, keep_generated=keep_generated))
            out.append(np.asarray(self.engine.generate(request).images[0]))
        return out


@pytest.mark.filterwarnings("ignore:The configuration file of this scheduler:FutureWarning")
def test_the_app_engine_makes_the_evaluation_pipelines_pixels_on_the_built_in_model(tmp_path):
    import torch

    torch.set_num_threads(1)
    scenes = corner_scenes()[:2]
    _, images = starts(scenes, "shape replaced")
    masks = [corner_mask(s.position) for s in scenes]  # already blurred: the engine gets blur 0
    seeds = [10_000, 10_001]
    engine = EngineInpainter()
    ours = engine([s.caption for s in scenes], images, masks, seeds)
    theirs = PipelineInpainter(batch=2)([s.caption for s in scenes], images, masks, seeds)
    for a, b in zip(ours, theirs):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    overlaid = engine([s.caption for s in scenes], images, masks, seeds, keep_generated=False)
    for out, image, mask in zip(overlaid, images, masks):
        kept = np.asarray(mask) == 0
        assert np.array_equal(out[kept], image[kept]) and np.abs(out[~kept].astype(int) - image[~kept]).mean() > 2
    result = run(engine, scenes)
    assert set(result) == set(KINDS)
    for kind in KINDS:
        row = result[kind]["inpainted"]
        assert row["n"] == 2 and row["outside_kept"] == 1.0 and row["outside_max_diff"] == 0
        assert result[kind]["itself"]["shape_colour"] == 0.0  # the start never shows the caption's colour
    full = {"n_captions": 2, "steps": 4, "guidance": 6.0, "kinds": result, "machine": "test", "date": "today",
            "wall_s": 1.0, "n_images": 6, "command": "python -m convert.demo_model inpaint --captions 2",
            "text_to_image": {a: {"prompt": 0.5} for a in ("shape_colour", "shape", "position")}}
    doc = tmp_path / "DEMO_MODEL.md"
    doc.write_text("# card\n")
    write_section(doc, full)
    text = doc.read_text()
    assert "inpaint" in sections(text) and text.startswith("# card\n")
    assert "| shape replaced: inpainted |" in render_section(full) and "100.0 % (0)" in text


def test_captions_is_an_inpaint_option_too():
    with pytest.raises(SystemExit):
        main(["inpaint", "--captions", "0"])
