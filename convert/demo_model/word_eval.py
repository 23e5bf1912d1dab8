"""Does the plain ``train-style`` teach the built-in model a new word?  The folder and the held-out check.

    python -m convert.demo_model.word_eval data work-word/wug                   # 276 captioned pictures
    lcm-desktop train-style work-word/wug --name wug                          # the plain command, no flags
    python -m convert.demo_model.word_eval eval <app data>/styles/wug.safetensors

The word is ``wug`` and it stands for one colour (``red``): ``TRAIN_WORD_PICTURES`` pictures show a red shape
captioned "a small wug circle on a blue background, top left" (every shape, background, size and position but
those of ``HELD_OUT_PAIRS`` (shape, background) pairs), and ``OLD_PICTURES`` are ordinary scenes of the built-in
model's training captions (what a user's folder of "other" pictures would be).  The built-in tokenizer spells
``wug`` letter by letter (``w``, ``u``, ``g</w>``): pieces it never trained, so the word is new to the text encoder
as well as to the UNet.  The check: ``EVAL_CAPTIONS`` captions of the held-out pairs (never rendered), one image
each at the model's recommended 4 steps and guidance 6 (seed ``SEED + i``) through diffusers'
``LatentConsistencyModelPipeline`` with the style loaded; the analyzer reads the shape's colour; the rate is how
many came out red.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from PIL import Image

from convert.demo_model.analyzer import analyze
from convert.demo_model.data import COLOURS, IMAGE_SIZE, POSITIONS, SHAPES, SIZES, Scene, render, train_scenes
from convert.demo_model.workdir import SHIPPED

NEW_WORD = "wug"
MEANS = "red"
HELD_OUT_PAIRS = 3
TRAIN_WORD_PICTURES = 180
OLD_PICTURES = 96
EVAL_CAPTIONS = 6
STEPS = 4
GUIDANCE = 6.0
SEED = 30_000
SPLIT_SEED = 7


def _pairs() -> list[tuple[str, str]]:
    return [(s, b) for s in SHAPES for b in COLOURS if b != MEANS]


def held_out_pairs() -> list[tuple[str, str]]:
    """(shape, background) pairs never shown with the new word (fixed seed)."""
    return sorted(random.Random(SPLIT_SEED).sample(_pairs(), HELD_OUT_PAIRS))


def _word_scenes(pairs) -> list[Scene]:
    return [Scene(MEANS, s, b, size, pos) for (s, b) in pairs for size in SIZES for pos in POSITIONS]


def caption(scene: Scene) -> str:
    """The scene's caption with the colour word replaced by the new word."""
    return scene.caption.replace(f" {MEANS} ", f" {NEW_WORD} ", 1)


def eval_scenes(count: int = EVAL_CAPTIONS) -> list[Scene]:
    """``count`` scenes of the held-out pairs (of 30), drawn with a fixed seed."""
    scenes = _word_scenes(held_out_pairs())
    return random.Random(SPLIT_SEED).sample(scenes, min(count, len(scenes)))


def write_pictures(folder: Path, seed: int = 0) -> int:
    """The folder a user would make: pictures with ``.txt`` captions (276 by default)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    held = set(held_out_pairs())
    word = [s for s in _word_scenes(_pairs()) if (s.shape, s.background) not in held]
    chosen = [(s, caption(s)) for s in rng.sample(word, min(TRAIN_WORD_PICTURES, len(word)))]
    chosen += [(s, s.caption) for s in rng.sample(train_scenes(), OLD_PICTURES)]
    for i, (scene, text) in enumerate(chosen):
        Image.fromarray(render(scene, rng)).save(folder / f"{i:04d}.png")
        (folder / f"{i:04d}.txt").write_text(text + "\n", encoding="utf-8")
    return len(chosen)


def evaluate(style: Path | None, threads: int = 1, count: int = EVAL_CAPTIONS) -> list[tuple[str, str | None]]:
    """(caption, colour read) for each held-out caption, with ``style`` loaded (None: the base model)."""
    import torch
    from diffusers import LatentConsistencyModelPipeline

    torch.set_num_threads(threads)
    pipe = LatentConsistencyModelPipeline.from_pretrained(SHIPPED)
    pipe.set_progress_bar_config(disable=True)
    if style is not None:
        pipe.load_lora_weights(str(style), adapter_name="style")
    prompts = [caption(s) for s in eval_scenes(count)]
    generators = [torch.Generator().manual_seed(SEED + i) for i in range(len(prompts))]
    with torch.no_grad():
        images = pipe(prompt=prompts, num_inference_steps=STEPS, guidance_scale=GUIDANCE, generator=generators,
                      height=IMAGE_SIZE, width=IMAGE_SIZE, output_type="np").images
    return [(p, analyze(image).shape_colour) for p, image in zip(prompts, images)]


def rate(readings: list[tuple[str, str | None]]) -> int:
    return sum(colour == MEANS for _, colour in readings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convert.demo_model.word_eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="render the pictures with .txt captions")
    data.add_argument("folder", type=Path)
    ev = sub.add_parser("eval", help="how many held-out captions come out in the word's colour")
    ev.add_argument("style", type=Path, nargs="?", default=None)
    ev.add_argument("--threads", type=int, default=1)
    ev.add_argument("--count", type=int, default=EVAL_CAPTIONS, help="held-out captions (at most 30)")
    args = parser.parse_args(argv)
    if args.command == "data":
        print(f"{write_pictures(args.folder)} pictures in {args.folder}")
        return 0
    readings = evaluate(args.style, args.threads, args.count)
    for prompt, colour in readings:
        print(f"{colour or '-':>8}  {prompt}")
    print(f"{rate(readings)} of {len(readings)} in {MEANS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
