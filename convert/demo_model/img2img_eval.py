"""``python -m convert.demo_model img2img``: does the built-in model do image-to-image meaningfully?

1. Moved starts: for each held-out caption a clean starting picture whose shape is elsewhere
   (``img2img_inputs.VARIANTS``: only the position changed; or position, shape colour and shape), run at
   each of ``STRENGTHS``; the analyzer says per changed attribute whether the output kept the start's
   value or followed the caption's.
2. Sketches: a crude wobbly, off-colour blob drawn where a caption says, prompted with that caption, at
   each of ``BLOB_STRENGTHS``: is the output a clean shape of the named kind, colour and place?

The images come from diffusers' ``LatentConsistencyModelImg2ImgPipeline`` on the shipped folder: the
converter may import only ``lcm_desktop.core`` (an import-linter contract), so it cannot drive the app's
``Engine``; ``tests/convert/test_demo_model_img2img.py`` checks that the app's ``Engine(TorchLoader)``
makes the same pixels (within 1/255) for these settings, seeds and starting pictures.
Results: ``work-demo/img2img.json`` and the "Image-to-image" section of docs/DEMO_MODEL.md.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from convert.demo_model.analyzer import Verdict, analyze, palette_labels
from convert.demo_model.data import (
    COLOURS,
    IMAGE_SIZE,
    POSITIONS,
    SIZES,
    Scene,
    draw_shape,
    held_out_scenes,
    held_out_triples,
    render,
)
from convert.demo_model.img2img_inputs import VARIANTS, Blob, Variant, clean_mask, draw_blob, iou, start_scene
from convert.demo_model.ship import RECOMMENDED_GUIDANCE, RECOMMENDED_STEPS
from convert.demo_model.workdir import SHIPPED, WORK, log, write_text

STRENGTHS = (0.3, 0.5, 0.7, 1.0)
BLOB_STRENGTHS = (0.5, 0.7, 0.8)
SEED0 = 10_000  # the generation seed of caption i is SEED0 + i, as in `eval`
START_SEED = 20_000  # the starting picture of caption i (variant v) is drawn from Random(START_SEED + 1000·v + i)
BLOB_SEED = 30_000
BLOB_POSITIONS_PER_TRIPLE = 2  # sketches: each held-out triple at this many random (position, size) pairs
RESULTS_I2I = WORK / "img2img.json"

# prompts, starting pictures (uint8 HWC), strength, seeds → uint8 HWC images
Painter = Callable[[list[str], list[np.ndarray], float, list[int]], list[np.ndarray]]


class PipelinePainter:
    """The shipped model in diffusers' LCM image-to-image pipeline, ``steps`` UNet calls, one generator per image."""

    def __init__(self, folder: Path = SHIPPED, steps: int = RECOMMENDED_STEPS,
                 guidance: float = RECOMMENDED_GUIDANCE, batch: int = 120):
        from diffusers import LatentConsistencyModelImg2ImgPipeline

        self.pipe = LatentConsistencyModelImg2ImgPipeline.from_pretrained(folder, safety_checker=None)
        self.pipe.set_progress_bar_config(disable=True)
        self.steps, self.guidance, self.batch = steps, guidance, batch

    def __call__(self, prompts: list[str], starts: list[np.ndarray], strength: float,
                 seeds: list[int]) -> list[np.ndarray]:
        import torch

        out: list[np.ndarray] = []
        for i in range(0, len(prompts), self.batch):
            with torch.no_grad():
                images = self.pipe(
                    prompt=prompts[i : i + self.batch], image=[Image.fromarray(s) for s in starts[i : i + self.batch]],
                    num_inference_steps=self.steps, guidance_scale=self.guidance, strength=strength,
                    generator=[torch.Generator().manual_seed(s) for s in seeds[i : i + self.batch]],
                    output_type="np").images
            out += [np.round(img * 255).astype(np.uint8) for img in images]  # as the app's Engine rounds
        return out

    def round_trip(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """The VAE's reconstruction (latent mean) of uint8 HWC pictures, as `eval`'s ceiling row."""
        import torch

        from convert.demo_model.data import to_tensor

        with torch.no_grad():
            y = self.pipe.vae.decode(self.pipe.vae.encode(to_tensor(np.stack(images))).latent_dist.mean).sample
        return list(((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())


# -- moved starts ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    """One output read back: the caption's scene, the starting picture's scene (None: no start), the verdict."""

    asked: Scene
    start: Scene | None
    verdict: Verdict


def tally_trials(trials: Sequence[Trial], changed: tuple[str, ...]) -> dict:
    """Per changed attribute the share of outputs showing the start's value and the caption's value
    ("neither": another value or no shape); "background": the share with the (unchanged) background kept."""
    n = len(trials)
    row: dict = {"n": n, "background": sum(t.verdict.background == t.asked.background for t in trials) / n}
    for attr in changed:
        start = sum(t.start is not None and getattr(t.verdict, attr) == getattr(t.start, attr) for t in trials)
        prompt = sum(getattr(t.verdict, attr) == getattr(t.asked, attr) for t in trials)
        row[attr] = {"start": start / n, "prompt": prompt / n, "neither": (n - start - prompt) / n}
    return row


def start_pictures(scenes: Sequence[Scene], variant: Variant, index: int) -> tuple[list[Scene], list[np.ndarray]]:
    """Each scene's starting scene (``variant``'s attributes changed) and its clean render, seeded per caption."""
    starts, images = [], []
    for i, scene in enumerate(scenes):
        rng = random.Random(START_SEED + 1000 * index + i)
        start = start_scene(scene, variant.changed, rng)
        starts.append(start)
        images.append(render(start, rng))
    return starts, images


def run_moves(painter: Painter, scenes: Sequence[Scene], strengths: Sequence[float] = STRENGTHS) -> dict:
    """{variant name: {"changed", "rows": [start picture itself, then one per strength]}}."""
    prompts = [s.caption for s in scenes]
    seeds = [SEED0 + i for i in range(len(scenes))]
    out = {}
    for index, variant in enumerate(VARIANTS):
        starts, images = start_pictures(scenes, variant, index)
        itself = tally_trials([Trial(a, s, analyze(img)) for a, s, img in zip(scenes, starts, images)],
                              variant.changed)
        rows = [{"strength": 0.0, **itself}]
        for strength in strengths:
            outputs = painter(prompts, images, strength, seeds)
            trials = [Trial(a, s, analyze(o)) for a, s, o in zip(scenes, starts, outputs)]
            rows.append({"strength": strength, **tally_trials(trials, variant.changed)})
            log.info("img2img %s, strength %g: %s", variant.name, strength, rows[-1])
        out[variant.name] = {"changed": list(variant.changed), "rows": rows}
    return out


# -- sketches ----------------------------------------------------------------------------------------------
def sketch_scenes() -> list[Scene]:
    """Each held-out (colour, shape, background) triple at ``BLOB_POSITIONS_PER_TRIPLE`` seeded positions and sizes."""
    rng = random.Random(BLOB_SEED)
    scenes = []
    for colour, shape, background in held_out_triples():
        for _ in range(BLOB_POSITIONS_PER_TRIPLE):
            scenes.append(Scene(colour, shape, background, rng.choice(list(SIZES)), rng.choice(list(POSITIONS))))
    return scenes


def sketch_score(asked: Scene, blob: Blob, image: np.ndarray) -> dict:
    """One output (or the sketch itself) against the caption it was drawn for.

    Analyzer hits for shape colour, shape, position, size, and "clean" (colour, shape and position all
    right); "colour_error": mean RGB distance of the pixels nearest the named colour to the palette colour
    (None if there are none); "iou": those pixels against the renderer's clean shape where the blob was drawn,
    "iou_sketch": against the sketch's own pixels; "cleaner": closer to the clean shape than to the sketch.
    """
    verdict = analyze(image)
    hits = {a: getattr(verdict, a) == getattr(asked, a) for a in ("shape_colour", "shape", "position", "size")}
    index = list(COLOURS).index(asked.shape_colour)
    mask = palette_labels(image) == index
    error = None
    if mask.any():
        named = np.array(COLOURS[asked.shape_colour], dtype=np.float32)
        error = float(np.sqrt(((image[mask].astype(np.float32) - named) ** 2).sum(-1)).mean())
    to_clean = iou(mask, clean_mask(asked.shape, blob.centre, blob.radius))
    to_sketch = iou(mask, palette_labels(blob.image) == index)
    return {**hits, "clean": hits["shape_colour"] and hits["shape"] and hits["position"], "colour_error": error,
            "iou": to_clean, "iou_sketch": to_sketch, "cleaner": to_clean > to_sketch}


def tally_sketches(scores: Sequence[dict]) -> dict:
    """Rates of the hits and "clean", and means of colour error (where measured) and IoU."""
    n = len(scores)
    row: dict = {"n": n}
    for key in ("shape_colour", "shape", "position", "size", "clean", "cleaner"):
        row[key] = sum(s[key] for s in scores) / n
    errors = [s["colour_error"] for s in scores if s["colour_error"] is not None]
    row["colour_error"] = sum(errors) / len(errors) if errors else None
    for key in ("iou", "iou_sketch"):
        row[key] = sum(s[key] for s in scores) / n
    return row


def sketches(scenes: Sequence[Scene]) -> list[Blob]:
    return [draw_blob(s, random.Random(BLOB_SEED + 1 + i)) for i, s in enumerate(scenes)]


def clean_renders(scenes: Sequence[Scene], blobs: Sequence[Blob]) -> list[np.ndarray]:
    """The renderer's clean shape of each scene at its sketch's centre and size (no jitter)."""
    images = []
    for scene, blob in zip(scenes, blobs):
        img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), COLOURS[scene.background])
        draw_shape(ImageDraw.Draw(img), scene.shape, *blob.centre, blob.radius, COLOURS[scene.shape_colour])
        images.append(np.asarray(img, dtype=np.uint8))
    return images


def run_sketches(painter: Painter, scenes: Sequence[Scene], strengths: Sequence[float] = BLOB_STRENGTHS,
                 round_trip: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None) -> dict:
    """{"rows": [the sketch itself, then one per strength], "ceiling": the scores of ``round_trip`` (the VAE)
    of the clean shapes where the sketches are, or None} over the sketches of ``scenes``."""
    blobs = sketches(scenes)
    ceiling = None
    if round_trip is not None:
        ceiling = tally_sketches([sketch_score(s, b, o) for s, b, o in
                                  zip(scenes, blobs, round_trip(clean_renders(scenes, blobs)))])
    rows = [{"strength": 0.0, **tally_sketches([sketch_score(s, b, b.image) for s, b in zip(scenes, blobs)])}]
    prompts = [s.caption for s in scenes]
    seeds = [SEED0 + i for i in range(len(scenes))]
    for strength in strengths:
        outputs = painter(prompts, [b.image for b in blobs], strength, seeds)
        rows.append({"strength": strength,
                     **tally_sketches([sketch_score(s, b, o) for s, b, o in zip(scenes, blobs, outputs)])})
        log.info("img2img sketches, strength %g: %s", strength, rows[-1])
    return {"rows": rows, "ceiling": ceiling}


# -- the stage ---------------------------------------------------------------------------------------------
def text_to_image_reference(scenes: Sequence[Scene]) -> dict:
    """The same captions and seeds with no starting picture (the LCM pipeline), for comparison."""
    from convert.demo_model.evaluate import generate, load_lcm

    pipe = load_lcm()
    images = []
    for i in range(0, len(scenes), 120):
        chunk = scenes[i : i + 120]
        images += list(generate(pipe, [s.caption for s in chunk], [SEED0 + i + k for k in range(len(chunk))],
                                RECOMMENDED_STEPS, RECOMMENDED_GUIDANCE))
    trials = [Trial(s, None, analyze(img)) for s, img in zip(scenes, images)]
    return tally_trials(trials, ("position", "shape_colour", "shape"))


def img2img(captions: int | None = None) -> dict:
    """Measure both evaluations on the first ``captions`` held-out captions (default all), write the results."""
    import torch

    from convert.demo_model.evaluate import machine
    from convert.demo_model.img2img_card import write_section
    from convert.demo_model.workdir import DOC

    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    scenes = held_out_scenes()[:captions]
    painter = PipelinePainter()
    moves = run_moves(painter, scenes)
    sketch_result = run_sketches(painter, sketch_scenes(), round_trip=painter.round_trip)
    reference = text_to_image_reference(scenes)
    result = {
        "n_captions": len(scenes), "n_held_out": len(held_out_scenes()), "steps": RECOMMENDED_STEPS,
        "guidance": RECOMMENDED_GUIDANCE, "moves": moves, "text_to_image": reference, "sketches": sketch_result,
        "n_images": len(scenes) * (len(VARIANTS) * len(STRENGTHS) + 1)
        + len(sketch_scenes()) * len(BLOB_STRENGTHS),
        "wall_s": time.perf_counter() - started, "machine": machine(load),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m convert.demo_model img2img" + (f" --captions {captions}" if captions else ""),
    }
    write_text(RESULTS_I2I, json.dumps(result, indent=2))
    write_section(DOC, result)
    log.info("img2img: %d images in %.0f s; wrote %s and %s", result["n_images"], result["wall_s"], RESULTS_I2I, DOC)
    return result

