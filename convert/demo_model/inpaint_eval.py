"""``python -m convert.demo_model inpaint``: does the built-in model inpaint meaningfully?

For each held-out caption whose shape sits in a corner (4 of the 5 positions), the starting picture keeps
everything but that corner, which is masked (a ``MASK_SIDE``² box in the corner, blur ``MASK_BLUR``), and the
caption is the prompt, at strength 1:

1. **Empty corner**: the start is the caption's background alone; does the masked corner take the caption's
   shape colour, shape and position?
2. **Shape replaced**: the start is the caption's scene with the shape colour and shape changed
   (``img2img_inputs.start_scene``) in that same corner; does the output show the start's or the caption's?

And in both: is every pixel outside the (blurred) mask exactly the start's (the overlay)?  Text-to-image on the
same captions and seeds is the reference row.  The images come from diffusers' ``StableDiffusionInpaintPipeline``
with ``LCMScheduler`` on the shipped folder, then ``lcm_desktop.core.mask.apply_overlay`` (the converter may
import only ``lcm_desktop.core``); ``tests/convert/test_demo_model_inpaint.py`` checks that the app's
``Engine(TorchLoader)`` makes the same pixels for these settings.
Results: ``work-demo/inpaint.json`` and the "Inpainting" section of docs/DEMO_MODEL.md.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from convert.demo_model.analyzer import analyze
from convert.demo_model.data import COLOURS, IMAGE_SIZE, POSITIONS, Scene, held_out_scenes, render
from convert.demo_model.doc_sections import replace_section
from convert.demo_model.img2img_inputs import start_scene
from convert.demo_model.ship import RECOMMENDED_GUIDANCE, RECOMMENDED_STEPS
from convert.demo_model.workdir import SHIPPED, WORK, log, write_text
from lcm_desktop.core.mask import apply_overlay, load_mask

MASK_SIDE = 40  # px of the 64² picture: a corner shape (centre 18 ± 3, half-extent ≤ 15) fits inside
MASK_BLUR = 4  # the app's default
SEED0 = 10_000  # caption i is generated with seed SEED0 + i, as in `eval` and `img2img`
START_SEED = 40_000
SECTION = "inpaint"
RESULTS_INPAINT = WORK / "inpaint.json"
CHANGED = ("shape_colour", "shape")
KINDS = ("empty corner", "shape replaced")

# prompts, starts (uint8 HWC), masks (PIL L, blurred), seeds → uint8 HWC images (before the overlay)
Inpainter = Callable[[list[str], list[np.ndarray], list[Image.Image], list[int]], list[np.ndarray]]


def corner_scenes(captions: int | None = None) -> list[Scene]:
    """The held-out scenes whose position is a corner (the first ``captions`` of them)."""
    return [s for s in held_out_scenes() if s.position != "center"][:captions]


def corner_mask(position: str, blur: int = MASK_BLUR) -> Image.Image:
    """White ``MASK_SIDE``² box in the corner of ``position``, blurred as the app blurs it."""
    cx, cy = POSITIONS[position]
    x0 = 0 if cx < IMAGE_SIZE // 2 else IMAGE_SIZE - MASK_SIDE
    y0 = 0 if cy < IMAGE_SIZE // 2 else IMAGE_SIZE - MASK_SIDE
    mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    mask[y0 : y0 + MASK_SIDE, x0 : x0 + MASK_SIDE] = 255
    return load_mask(Image.fromarray(mask, "L"), IMAGE_SIZE, IMAGE_SIZE, blur)


def starts(scenes: Sequence[Scene], kind: str) -> tuple[list[Scene | None], list[np.ndarray]]:
    """Each caption's starting scene (None: the background alone) and its picture, seeded per caption."""
    out_scenes: list[Scene | None] = []
    images = []
    for i, scene in enumerate(scenes):
        rng = random.Random(START_SEED + 1000 * KINDS.index(kind) + i)
        if kind == "empty corner":
            out_scenes.append(None)
            images.append(np.full((IMAGE_SIZE, IMAGE_SIZE, 3), COLOURS[scene.background], np.uint8))
        else:
            start = start_scene(scene, CHANGED, rng)
            out_scenes.append(start)
            images.append(render(start, rng))
    return out_scenes, images


class PipelineInpainter:
    """The shipped model in diffusers' inpaint pipeline with ``LCMScheduler``, strength 1, one generator per image."""

    def __init__(self, folder: Path = SHIPPED, steps: int = RECOMMENDED_STEPS,
                 guidance: float = RECOMMENDED_GUIDANCE, batch: int = 96):
        from diffusers import LCMScheduler, StableDiffusionInpaintPipeline

        self.pipe = StableDiffusionInpaintPipeline.from_pretrained(folder, safety_checker=None,
                                                                   requires_safety_checker=False)
        self.pipe.scheduler = LCMScheduler.from_config(self.pipe.scheduler.config)
        self.pipe.set_progress_bar_config(disable=True)
        self.steps, self.guidance, self.batch = steps, guidance, batch

    def __call__(self, prompts: list[str], images: list[np.ndarray], masks: list[Image.Image],
                 seeds: list[int]) -> list[np.ndarray]:
        import torch

        out: list[np.ndarray] = []
        for i in range(0, len(prompts), self.batch):
            part = slice(i, i + self.batch)
            with torch.no_grad():
                made = self.pipe(
                    prompt=prompts[part], image=[Image.fromarray(s) for s in images[part]], mask_image=masks[part],
                    strength=1.0, num_inference_steps=self.steps, guidance_scale=self.guidance,
                    height=IMAGE_SIZE, width=IMAGE_SIZE,
                    generator=[torch.Generator().manual_seed(s) for s in seeds[part]], output_type="np").images
            out += [np.round(img * 255).astype(np.uint8) for img in made]  # as the app's Engine rounds
        return out


def score(asked: Scene, start: Scene | None, start_image: np.ndarray, mask: Image.Image,
          output: np.ndarray) -> dict:
    """One overlaid output: the analyzer's reading against the caption (and the start), and the outside kept."""
    verdict = analyze(output)
    kept = np.asarray(mask) == 0
    row = {a: getattr(verdict, a) == getattr(asked, a) for a in ("shape_colour", "shape", "position")}
    row["clean"] = all(row.values())
    for a in CHANGED:
        row[f"{a}_start"] = start is not None and getattr(verdict, a) == getattr(start, a)
    row["outside_kept"] = bool(np.array_equal(output[kept], start_image[kept]))
    row["outside_max_diff"] = int(np.abs(output[kept].astype(int) - start_image[kept].astype(int)).max())
    row["background"] = verdict.background == asked.background
    return row


def tally(rows: Sequence[dict]) -> dict:
    n = len(rows)
    out: dict = {"n": n}
    for key in ("shape_colour", "shape", "position", "clean", "shape_colour_start", "shape_start", "outside_kept",
                "background"):
        out[key] = sum(r[key] for r in rows) / n
    out["outside_max_diff"] = max(r["outside_max_diff"] for r in rows)
    return out


def run(inpainter: Inpainter, scenes: Sequence[Scene]) -> dict:
    """{kind: {"itself": the start read, "inpainted": the outputs read}} over ``scenes``."""
    prompts = [s.caption for s in scenes]
    seeds = [SEED0 + i for i in range(len(scenes))]
    masks = [corner_mask(s.position) for s in scenes]
    out = {}
    for kind in KINDS:
        start_scenes, images = starts(scenes, kind)
        made = inpainter(prompts, images, masks, seeds)
        overlaid = [np.asarray(apply_overlay(m, Image.fromarray(s), Image.fromarray(o)))
                    for m, s, o in zip(masks, images, made)]
        itself = tally([score(a, st, img, m, img) for a, st, img, m in zip(scenes, start_scenes, images, masks)])
        result = tally([score(a, st, img, m, o)
                        for a, st, img, m, o in zip(scenes, start_scenes, images, masks, overlaid)])
        out[kind] = {"itself": itself, "inpainted": result}
        log.info("inpaint %s: %s", kind, result)
    return out


# -- the card section --------------------------------------------------------------------------------------
def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def render_section(result: dict) -> str:
    """The section's markdown; ``result`` as :func:`inpaint` measures it."""
    head = ("| input | shape colour: caption's | shape: caption's | position: caption's | all three | "
            "shape colour: start's | shape: start's | outside the mask unchanged (max diff) |\n"
            "|---|---|---|---|---|---|---|---|\n")
    lines = []
    for kind in KINDS:
        for label, row in ((f"{kind}: the starting picture itself", result["kinds"][kind]["itself"]),
                           (f"{kind}: inpainted", result["kinds"][kind]["inpainted"])):
            lines.append(f"| {label} | {_pct(row['shape_colour'])} | {_pct(row['shape'])} | {_pct(row['position'])} "
                         f"| {_pct(row['clean'])} | {_pct(row['shape_colour_start'])} | {_pct(row['shape_start'])} "
                         f"| {_pct(row['outside_kept'])} ({row['outside_max_diff']}) |")
    ref = result["text_to_image"]
    lines.append(f"| no starting picture (text-to-image) | {_pct(ref['shape_colour']['prompt'])} | "
                 f"{_pct(ref['shape']['prompt'])} | {_pct(ref['position']['prompt'])} | – | – | – | – |")
    replaced, empty = result["kinds"]["shape replaced"]["inpainted"], result["kinds"]["empty corner"]["inpainted"]
    notes = (f"- The masked corner follows the caption: all three attributes {_pct(empty['clean'])} (empty corner) and "
             f"{_pct(replaced['clean'])} (shape replaced); the start's shape colour survives in "
             f"{_pct(replaced['shape_colour_start'])} and its shape in {_pct(replaced['shape_start'])} of the "
             f"replaced ones.\n- Position: {_pct(replaced['position'])} with the mask against "
             f"{_pct(ref['position']['prompt'])} in text-to-image — the mask confines the shape to its corner.\n"
             f"- Outside the mask: {_pct(min(empty['outside_kept'], replaced['outside_kept']))} of the outputs keep "
             "every pixel of the start (the overlay).")
    return f"""## Inpainting (`{result["command"]}`)
Does the model repaint a masked corner after its caption and leave the rest alone? {result["n_captions"]} held-out
captions whose shape is in a corner (of the 240; "center" left out), {result["steps"]} steps, guidance
{result["guidance"]:g}, strength 1, seed 10 000 + i for caption i. The mask is a {MASK_SIDE}×{MASK_SIDE} px box in the
caption's corner of the 64×64 picture, blurred {MASK_BLUR} px (the app's default). Two starting pictures: the
caption's background alone ("empty corner"), and the caption's scene with the shape colour and the shape changed
to other values in that same corner ("shape replaced"). The images come from diffusers'
`StableDiffusionInpaintPipeline` with `LCMScheduler` on the shipped folder, then `lcm_desktop.core.mask.apply_overlay`
(the app's own overlay); `tests/convert/test_demo_model_inpaint.py` checks that the app's `Engine(TorchLoader)`
makes the same pixels (within 1/255). Read by the analyzer; "outside the mask unchanged": the share of outputs
whose every pixel where the blurred mask is 0 equals the start's, and the largest difference there.

Machine: {result["machine"]}. Date: {result["date"]}. Wall time: {result["wall_s"]:.0f} s for
{result["n_images"]} generated images (loading and the analyzer included).

{head}{chr(10).join(lines)}

{notes}

The analyzer reads the shape of a VAE round trip of a true picture right only about three times in four
(see above), so the shape column cannot reach 100 %.
"""


def write_section(doc: Path, result: dict) -> None:
    text = doc.read_text(encoding="utf-8") if doc.is_file() else ""
    write_text(doc, replace_section(text, SECTION, render_section(result)))


# -- the stage ---------------------------------------------------------------------------------------------
def inpaint(captions: int | None = None) -> dict:
    """Measure on the first ``captions`` corner captions (default all 192), write the results and the section."""
    import torch

    from convert.demo_model.evaluate import machine
    from convert.demo_model.img2img_eval import text_to_image_reference
    from convert.demo_model.workdir import DOC

    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    scenes = corner_scenes(captions)
    kinds = run(PipelineInpainter(), scenes)
    result = {
        "n_captions": len(scenes), "steps": RECOMMENDED_STEPS, "guidance": RECOMMENDED_GUIDANCE,
        "mask_side": MASK_SIDE, "mask_blur": MASK_BLUR, "kinds": kinds,
        "text_to_image": text_to_image_reference(scenes),
        "n_images": len(scenes) * (len(KINDS) + 1), "wall_s": time.perf_counter() - started,
        "machine": machine(load), "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m convert.demo_model inpaint" + (f" --captions {captions}" if captions else ""),
    }
    write_text(RESULTS_INPAINT, json.dumps(result, indent=2))
    write_section(DOC, result)
    log.info("inpaint: %d images in %.0f s; wrote %s and %s", result["n_images"], result["wall_s"],
             RESULTS_INPAINT, DOC)
    return result
