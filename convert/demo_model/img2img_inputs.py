"""Starting pictures for the image-to-image evaluation (numpy + Pillow only).

Two kinds:
- :func:`start_scene`: a held-out caption's scene with some attributes (position; optionally the shape
  colour and the shape too) changed to another value, rendered with :func:`data.render` — a clean
  picture whose shape is elsewhere than the caption says;
- :func:`draw_blob`: a crude hand-drawn-style sketch of a caption's scene — a filled wobbly polygon,
  slightly off the palette colour, on the exact background colour, where the caption says.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from convert.demo_model.data import COLOURS, IMAGE_SIZE, JITTER, POSITIONS, SHAPES, SIZES, Scene, draw_shape

CHANGEABLE = ("position", "shape_colour", "shape")
WOBBLE = 0.18  # radial wobble of a blob's outline, as a fraction of its half-extent (±)
TILT_DEGREES = 12  # a blob's square or triangle is turned by up to this much (±)
COLOUR_OFFSET = (18, 36)  # a blob's colour is off the palette by this much per channel (random sign)


@dataclass(frozen=True)
class Variant:
    """Which attributes of the caption's scene the starting picture changes."""

    name: str
    changed: tuple[str, ...]


MOVED = Variant("moved", ("position",))
MOVED_RECOLOURED_RESHAPED = Variant("moved, recoloured, reshaped", ("position", "shape_colour", "shape"))
VARIANTS = (MOVED, MOVED_RECOLOURED_RESHAPED)


def _alternatives(scene: Scene, attr: str) -> list[str]:
    if attr == "position":
        return [p for p in POSITIONS if p != scene.position]
    if attr == "shape":
        return [s for s in SHAPES if s != scene.shape]
    if attr == "shape_colour":
        return [c for c in COLOURS if c not in (scene.shape_colour, scene.background)]
    raise ValueError(f"attribute {attr!r} cannot be changed; choose from {', '.join(CHANGEABLE)}")


def start_scene(scene: Scene, changed: tuple[str, ...], rng: random.Random) -> Scene:
    """``scene`` with each attribute in ``changed`` set to another value drawn from ``rng``; the rest kept."""
    return replace(scene, **{attr: rng.choice(_alternatives(scene, attr)) for attr in changed})


@dataclass(frozen=True)
class Blob:
    """A sketch: the picture (64, 64, 3) uint8, where its outline is centred, its half-extent, its fill."""

    image: np.ndarray
    centre: tuple[int, int]
    radius: int
    fill: tuple[int, int, int]


def _clean_outline(shape: str, r: float) -> list[tuple[float, float]]:
    """Points around the clean shape's outline, centred on (0, 0), as :func:`data.draw_shape` draws it."""
    if shape == "circle":
        return [(r * math.cos(2 * math.pi * k / 20), r * math.sin(2 * math.pi * k / 20)) for k in range(20)]
    if shape == "square":
        q = r * 0.85
        corners = [(-q, -q), (q, -q), (q, q), (-q, q)]
    elif shape == "triangle":
        corners = [(0.0, -r), (r, r), (-r, r)]
    else:
        raise ValueError(f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}")
    points = []
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1]):
        points += [(x0 + (x1 - x0) * t / 4, y0 + (y1 - y0) * t / 4) for t in range(4)]
    return points


def blob_outline(shape: str, cx: float, cy: float, r: float, rng: random.Random) -> list[tuple[float, float]]:
    """A wobbly version of the clean outline: turned a little, every point pushed in or out along its radius."""
    tilt = 0.0 if shape == "circle" else math.radians(rng.uniform(-TILT_DEGREES, TILT_DEGREES))
    cos, sin = math.cos(tilt), math.sin(tilt)
    out = []
    for x, y in _clean_outline(shape, r):
        k = 1.0 + rng.uniform(-WOBBLE, WOBBLE)
        out.append((cx + k * (x * cos - y * sin), cy + k * (x * sin + y * cos)))
    return out


def off_colour(name: str, rng: random.Random) -> tuple[int, int, int]:
    """The palette colour ``name`` moved by 18–36 per channel (random sign), still nearest to ``name``."""
    base = np.array(COLOURS[name], dtype=np.int64)
    palette = {n: np.array(c, dtype=np.int64) for n, c in COLOURS.items()}
    offset = np.array([rng.choice((-1, 1)) * rng.randint(*COLOUR_OFFSET) for _ in range(3)])
    for _ in range(4):  # halve the offset until the colour still reads as ``name``
        fill = np.clip(base + offset, 0, 255)
        if min(palette, key=lambda n: int(((palette[n] - fill) ** 2).sum())) == name:
            break
        offset //= 2
    return tuple(int(v) for v in fill)


def draw_blob(scene: Scene, rng: random.Random) -> Blob:
    """A crude sketch of ``scene``: its shape as a filled wobbly polygon, off colour, at its position (±jitter)."""
    cx, cy = POSITIONS[scene.position]
    cx += rng.randint(-JITTER, JITTER)
    cy += rng.randint(-JITTER, JITTER)
    r = SIZES[scene.size]
    fill = off_colour(scene.shape_colour, rng)
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), COLOURS[scene.background])
    ImageDraw.Draw(img).polygon(blob_outline(scene.shape, cx, cy, r, rng), fill=fill)
    return Blob(np.asarray(img, dtype=np.uint8), (cx, cy), r, fill)


def clean_mask(shape: str, centre: tuple[int, int], radius: int) -> np.ndarray:
    """(64, 64) bool: where the renderer's clean ``shape`` of half-extent ``radius`` at ``centre`` is."""
    img = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
    draw_shape(ImageDraw.Draw(img), shape, centre[0], centre[1], radius, 255)
    return np.asarray(img) > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0
