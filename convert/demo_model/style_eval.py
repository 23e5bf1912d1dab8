"""Teach the built-in model a size it never saw ("huge") and measure it: the data and the evaluation.

    python -m convert.demo_model.style_eval data work-style/huge            # 200 captioned pictures
    lcm-desktop train-style work-style/huge --name demo-huge …               # the app trains (LCF or plain)
    python -m convert.demo_model.style_eval eval --style "LCF=…safetensors" --style "plain=…safetensors"

Why a size and not a colour: the demo VAE was trained on eight colours and maps any other onto them (a pink shape,
RGB 245/125/195, comes back from an encode-decode round trip as 193/123/183 and is read as pink a third of the
time; light pink comes back white, cyan blue, grey purple), so no UNet or text-encoder fine-tune could draw pink.
A huge shape (half-extent ``HUGE`` px, the picture's height and more) is inside what the VAE draws.

The pictures are the demo grammar's scenes in the new size: the training (colour, shape, background) triples at
every position, ``PICTURES − OLD_PICTURES`` of them (seeded), plus ``OLD_PICTURES`` ordinary training scenes
(prior preservation: without them the text-encoder LoRA shifts the old captions too).  The new-concept evaluation:
``NEW_CAPTIONS`` of the 120 held-out-triple captions in the new size, never rendered for training; the old
concepts: every fourth of the 240 held-out captions of ``evaluate``, the first ``OLD_CAPTIONS``.  Every picture is
made by diffusers' ``LatentConsistencyModelPipeline`` on the shipped folder with the LoRA loaded (the converter may
import only ``lcm_desktop.core``) and read by the analyzer with the sizes plus huge.  Seeds: 20 000 + i for
new-concept caption i, 10 000 + index for old captions (as ``evaluate``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from convert.demo_model.analyzer import ATTRIBUTES, analyze
from convert.demo_model.data import (
    IMAGE_SIZE,
    POSITIONS,
    SIZES,
    Scene,
    held_out_scenes,
    held_out_triples,
    train_scenes,
    train_triples,
)
from convert.demo_model.data import render as data_render
from convert.demo_model.workdir import SHIPPED

NEW_WORD = "huge"
HUGE = 22  # half-extent in pixels (large: 14)
STYLE_SIZES = {**SIZES, NEW_WORD: HUGE}
PICTURES = 200
OLD_PICTURES = 50  # of the 200: ordinary scenes, so the old captions keep their meaning
NEW_CAPTIONS = 60
OLD_CAPTIONS = 60
STEPS = (1, 2, 4, 8)
GUIDANCE = 6.0
SEED_NEW, SEED_OLD = 20_000, 10_000


def new_scenes(triples) -> list[Scene]:
    return [Scene(c, s, b, NEW_WORD, pos) for (c, s, b) in triples for pos in POSITIONS]


def train_style_scenes() -> list[Scene]:
    return new_scenes(train_triples())


def eval_scenes() -> list[Scene]:
    return new_scenes(held_out_triples())[::2][:NEW_CAPTIONS]


def old_scenes() -> list[Scene]:
    return held_out_scenes()[::4][:OLD_CAPTIONS]


def render(scene: Scene, rng: random.Random) -> np.ndarray:
    """``data.render`` with the sizes plus huge."""
    return data_render(scene, rng, STYLE_SIZES)


def write_pictures(folder: Path, count: int = PICTURES, old: int = OLD_PICTURES, seed: int = 0) -> int:
    """``count`` pictures with .txt captions: ``old`` of them ordinary training scenes of the built-in model (prior
    preservation: the captions the model already knows, drawn as it learned them), the rest huge scenes (seeded)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    chosen = rng.sample(train_style_scenes(), count - old) + rng.sample(train_scenes(), old)
    for i, scene in enumerate(chosen):
        Image.fromarray(render(scene, rng)).save(folder / f"{i:04d}.png")
        (folder / f"{i:04d}.txt").write_text(scene.caption + "\n", encoding="utf-8")
    return len(chosen)


def _generate(pipe, prompts: list[str], seeds: list[int], steps: int) -> np.ndarray:
    import torch

    gens = [torch.Generator().manual_seed(s) for s in seeds]
    with torch.no_grad():
        return pipe(prompt=prompts, num_inference_steps=steps, guidance_scale=GUIDANCE, generator=gens,
                    height=IMAGE_SIZE, width=IMAGE_SIZE, output_type="np").images


def score(pipe, scene_list: list[Scene], seed0: int, steps: int, batch: int = 60) -> dict[str, float]:
    """Exact-match accuracy (%) per attribute, read with the sizes plus huge; ``all``: every attribute but the
    shape (the VAE's own weak spot, see DEMO_MODEL.md) right in the same picture."""
    hits = dict.fromkeys((*ATTRIBUTES, "all"), 0)
    for start in range(0, len(scene_list), batch):
        part = scene_list[start : start + batch]
        images = _generate(pipe, [s.caption for s in part], [seed0 + start + i for i in range(len(part))], steps)
        for scene, image in zip(part, images):
            matches = analyze(image, sizes=STYLE_SIZES).matches(scene)
            for attribute, ok in matches.items():
                hits[attribute] += ok
            hits["all"] += all(ok for a, ok in matches.items() if a != "shape")
    return {a: 100.0 * n / len(scene_list) for a, n in hits.items()}


def evaluate(styles: dict[str, Path | None], out: Path) -> dict:
    """Scores of the base model (``None``) and each LoRA at ``STEPS``; written to ``out`` as JSON."""
    import time

    from diffusers import LatentConsistencyModelPipeline

    pipe = LatentConsistencyModelPipeline.from_pretrained(SHIPPED)
    pipe.set_progress_bar_config(disable=True)
    new, old = eval_scenes(), old_scenes()
    results: dict = {"new_captions": len(new), "old_captions": len(old), "guidance": GUIDANCE, "rows": []}
    for label, lora in styles.items():
        if lora is not None:
            pipe.load_lora_weights(str(lora), adapter_name="style")
        for steps in STEPS:
            started = time.perf_counter()
            row = {"label": label, "steps": steps, "new": score(pipe, new, SEED_NEW, steps),
                   "old": score(pipe, old, SEED_OLD, steps)}
            row["seconds"] = round(time.perf_counter() - started, 1)
            results["rows"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        if lora is not None:
            pipe.unload_lora_weights()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return results


def tables(results: dict) -> str:
    """Markdown: the new concept (huge captions) and the old held-out captions, one row per style and steps."""
    base = {r["steps"]: r for r in results["rows"] if r["label"] == "before"}
    lines = [f"**New concept** ({results['new_captions']} captions never rendered for training; "
             f"guidance {results['guidance']:g}):", "",
             "| model | steps | shape colour | background | shape | position | size = huge | all but shape |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        n = r["new"]
        lines.append(f"| {r['label']} | {r['steps']} | " + " | ".join(f"{n[a]:.1f} %" for a in (*ATTRIBUTES, "all"))
                     + " |")
    lines += ["", f"**Old concepts** ({results['old_captions']} of the 240 held-out captions; change against the "
              "base model at the same steps in brackets):", "",
              "| model | steps | shape colour | background | shape | position | size | all but shape |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        o, b = r["old"], base.get(r["steps"], r)["old"]
        cells = [f"{o[a]:.1f} %" + ("" if r["label"] == "before" else f" ({o[a] - b[a]:+.1f})")
                 for a in (*ATTRIBUTES, "all")]
        lines.append(f"| {r['label']} | {r['steps']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convert.demo_model.style_eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="render the training pictures with .txt captions")
    data.add_argument("folder", type=Path)
    data.add_argument("--count", type=int, default=PICTURES)
    data.add_argument("--old", type=int, default=OLD_PICTURES, help="how many of them are ordinary scenes")
    ev = sub.add_parser("eval", help="score the base model and LoRAs; print markdown tables")
    ev.add_argument("--style", action="append", default=[], metavar="LABEL=FILE", help="a LoRA to score")
    ev.add_argument("--out", type=Path, default=Path("work-style/style_eval.json"))
    ev.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "data":
        print(f"{write_pictures(args.folder, args.count, args.old)} pictures in {args.folder}")
        return 0
    import torch

    torch.set_num_threads(args.threads)
    styles: dict[str, Path | None] = {"before": None}
    for item in args.style:
        label, _, file = item.partition("=")
        styles[label] = Path(file)
    print(tables(evaluate(styles, args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
