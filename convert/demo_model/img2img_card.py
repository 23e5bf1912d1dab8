"""The "Image-to-image" section of docs/DEMO_MODEL.md, rendered from ``img2img_eval``'s results.

Pure rendering (:func:`render_section`) and one writer (:func:`write_section`) that replaces only this
section's marked block, so ``eval`` and ``img2img`` can each be rerun without losing the other's tables.
"""

from __future__ import annotations

from pathlib import Path

from convert.demo_model.doc_sections import replace_section
from convert.demo_model.workdir import write_text
from lcm_desktop.core.request import schedule_points

SECTION = "img2img"
_NAMES = {"position": "position", "shape_colour": "shape colour", "shape": "shape"}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _label(row: dict, itself: str) -> str:
    s = row["strength"]
    return itself if s == 0.0 else f"strength {s:g} ({schedule_points(s)} schedule points)"


def _moves_table(variant: dict, reference: dict) -> str:
    changed = variant["changed"]
    head = " | ".join(f"{_NAMES[a]}: start's | {_NAMES[a]}: caption's" for a in changed)
    out = f"| input | {head} | background kept |\n|---|" + "---|---|" * len(changed) + "---|\n"
    rows = [*variant["rows"], {"strength": None, **reference}]
    for row in rows:
        label = "no starting picture (text-to-image)" if row["strength"] is None else \
            _label(row, "the starting picture itself")
        cells = " | ".join(("–" if row["strength"] is None else _pct(row[a]["start"])) + f" | {_pct(row[a]['prompt'])}"
                           for a in changed)
        out += f"| {label} | {cells} | {_pct(row['background'])} |\n"
    return out


def _trend(name: str, variant: dict) -> list[str]:
    """One line per changed attribute: the start's and the caption's share from the lowest to the highest strength,
    and whether they move monotonically (start's share never rising, caption's never falling)."""
    rows = [r for r in variant["rows"] if r["strength"] > 0]
    lines = []
    for a in variant["changed"]:
        start = [r[a]["start"] for r in rows]
        prompt = [r[a]["prompt"] for r in rows]
        mono = all(x >= y for x, y in zip(start, start[1:])) and all(x <= y for x, y in zip(prompt, prompt[1:]))
        lines.append(f"- {_NAMES[a]} ({name}): the start's kept {_pct(start[0])} → {_pct(start[-1])}, the caption's "
                     f"followed {_pct(prompt[0])} → {_pct(prompt[-1])} from strength {rows[0]['strength']:g} to "
                     f"{rows[-1]['strength']:g}; {'monotone' if mono else 'NOT monotone'}.")
    return lines


def _sketch_table(sketches: dict) -> str:
    out = ("| input | shape colour | shape | position | size | clean: colour, shape and position | colour error "
           "(RGB) | IoU with the clean shape | IoU with the sketch | closer to the clean shape |\n"
           "|---|---|---|---|---|---|---|---|---|---|\n")
    rows = list(sketches["rows"])
    if sketches.get("ceiling"):
        rows.append({"strength": None, **sketches["ceiling"]})
    for row in rows:
        err = "–" if row["colour_error"] is None else f"{row['colour_error']:.1f}"
        label = "VAE round trip of the clean shape at the sketch's place (ceiling)" if row["strength"] is None \
            else _label(row, "the sketch itself")
        out += (f"| {label} | {_pct(row['shape_colour'])} | {_pct(row['shape'])} | {_pct(row['position'])} | "
                f"{_pct(row['size'])} | {_pct(row['clean'])} | {err} | {row['iou']:.2f} | {row['iou_sketch']:.2f} | "
                f"{_pct(row['cleaner'])} |\n")
    return out


def render_section(result: dict) -> str:
    """The section's markdown; ``result`` as ``img2img_eval.img2img`` measures it."""
    moves = result["moves"]
    names = list(moves)
    n_sketch = result["sketches"]["rows"][0]["n"]
    trend = [line for name in names for line in _trend(name, moves[name])]
    tables = "\n".join(
        f"**Starting picture {name}** (changed: {', '.join(_NAMES[a] for a in moves[name]['changed'])}):\n\n"
        f"{_moves_table(moves[name], result['text_to_image'])}" for name in names)
    return f"""## Image-to-image (`{result["command"]}`)
Does the model combine a starting picture with its caption? {result["n_captions"]} of the
{result["n_held_out"]} held-out captions, {result["steps"]} steps (UNet calls; the strength cuts the 50-point
distillation schedule), guidance {result["guidance"]:g}, seed 10 000 + i for caption i (as above). The images
come from diffusers' `LatentConsistencyModelImg2ImgPipeline` on the shipped folder: the converter may import
only `lcm_desktop.core`, and `tests/convert/test_demo_model_img2img.py` checks that the app's
`Engine(TorchLoader)` makes the same pixels (within 1/255) for these settings. Read by the analyzer.

Machine: {result["machine"]}. Date: {result["date"]}. Wall time: {result["wall_s"]:.0f} s for
{result["n_images"]} generated images (loading and the analyzer included).

### A starting picture with the shape elsewhere
Each caption's scene rendered by `data.render` (a clean shape, ±3 px jitter) with some attributes changed to
another value drawn per caption with a fixed seed: the position to one of the other four; the shape colour to
one that is neither the caption's nor the background; the shape to one of the other two. Background and size
are the caption's. A cell is the share of outputs the analyzer reads as the start's or as the caption's value
(the rest: a third value or no shape); "the starting picture itself" reads the input (strength 0).

{tables}
{chr(10).join(trend)}

The analyzer reads the shape of a VAE round trip of a true picture right only about three times in four
(the table above), so the shape columns cannot reach 100 % either way.

### A crude sketch
{n_sketch} sketches: each held-out (colour, shape, background) triple twice, at a seeded position and size,
drawn by `img2img_inputs.draw_blob` as a filled wobbly polygon (outline points pushed ±18 % along the radius,
squares and triangles turned up to ±12°) in the named colour moved 18–36 per RGB channel, on the exact
background colour; the prompt is the caption naming that colour, shape, size and position. "Clean": the
analyzer reads the named colour, shape and position. Colour error: mean RGB distance of the pixels nearest to
the named colour from its palette value; IoU: those pixels against the renderer's clean shape at the
sketch's centre and size, and against the sketch's own pixels; "closer to the clean shape": the share of
outputs whose IoU with the clean shape is the higher of the two.

{_sketch_table(result["sketches"])}"""


def write_section(doc: Path, result: dict) -> None:
    """Replace (or append) this section of ``doc`` atomically; the rest of the card is left as it is."""
    text = doc.read_text(encoding="utf-8") if doc.is_file() else ""
    write_text(doc, replace_section(text, SECTION, render_section(result)))
