"""Seeded captioned shapes: "a large red circle on a blue background, top left" (64×64 RGB).

Pure numpy + Pillow (torch only inside :func:`to_tensor` and :func:`shape_mask`) so the
analyzer and the tests stay light. A fixed set of (shape colour, shape, background colour)
triples is held out: those captions never appear in training and are what the evaluation
prompts with.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (250, 140, 20),
    "yellow": (245, 225, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 220),
    "purple": (140, 50, 180),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 8, "large": 14}  # half-extent in pixels
POSITIONS: dict[str, tuple[int, int]] = {  # centre (x, y) in pixels
    "top left": (18, 18),
    "top right": (46, 18),
    "bottom left": (18, 46),
    "bottom right": (46, 46),
    "center": (32, 32),
}
HELD_OUT_TRIPLES = 24  # × 2 sizes × 5 positions = 240 held-out captions
SPLIT_SEED = 1234
JITTER = 3  # position jitter in pixels (±)


@dataclass(frozen=True)
class Scene:
    """One picture's attributes; ``caption`` is its text."""

    shape_colour: str
    shape: str
    background: str
    size: str
    position: str

    @property
    def caption(self) -> str:
        return f"a {self.size} {self.shape_colour} {self.shape} on a {self.background} background, {self.position}"

    @property
    def triple(self) -> tuple[str, str, str]:
        return (self.shape_colour, self.shape, self.background)


def all_triples() -> list[tuple[str, str, str]]:
    return [(c, s, b) for c in COLOURS for s in SHAPES for b in COLOURS if b != c]


def held_out_triples() -> list[tuple[str, str, str]]:
    """The (shape colour, shape, background) triples never shown in training (fixed seed)."""
    return sorted(random.Random(SPLIT_SEED).sample(all_triples(), HELD_OUT_TRIPLES))


def train_triples() -> list[tuple[str, str, str]]:
    held = set(held_out_triples())
    return [t for t in all_triples() if t not in held]


def scenes_for(triples: list[tuple[str, str, str]]) -> list[Scene]:
    return [Scene(c, s, b, size, pos) for (c, s, b) in triples for size in SIZES for pos in POSITIONS]


def held_out_scenes() -> list[Scene]:
    """Evaluation scenes: every held-out triple at every size and position (240)."""
    return scenes_for(held_out_triples())


def train_scenes() -> list[Scene]:
    return scenes_for(train_triples())


def vocabulary() -> list[str]:
    """Every word a caption can contain (one token each), punctuation included."""
    words = {"a", "on", "background", ","}
    words |= set(COLOURS) | set(SHAPES) | set(SIZES)
    for pos in POSITIONS:
        words |= set(pos.split())
    return sorted(words)


def shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    return None


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    """Draw ``shape`` of half-extent ``r`` centred on (cx, cy); squares are a little smaller (same area feel)."""
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        q = r * 0.85
        draw.rectangle([cx - q, cy - q, cx + q, cy + q], fill=fill)
    elif shape == "triangle":
        draw.polygon(shape_polygon(shape, cx, cy, r), fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def render(scene: Scene, rng: random.Random, sizes: dict[str, int] = SIZES) -> np.ndarray:
    """The scene as a (64, 64, 3) uint8 array; position and size jitter come from ``rng``; ``sizes``: half-extents
    by size word (a style may teach a new one)."""
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), COLOURS[scene.background])
    cx, cy = POSITIONS[scene.position]
    cx += rng.randint(-JITTER, JITTER)
    cy += rng.randint(-JITTER, JITTER)
    r = sizes[scene.size] + rng.randint(-1, 1)
    draw_shape(ImageDraw.Draw(img), scene.shape, cx, cy, r, COLOURS[scene.shape_colour])
    return np.asarray(img, dtype=np.uint8)


def sample_batch(
    scenes: list[Scene], n: int, rng: random.Random
) -> tuple[np.ndarray, list[str]]:
    """``n`` random scenes rendered: uint8 (n, 64, 64, 3) and their captions."""
    chosen = [rng.choice(scenes) for _ in range(n)]
    images = np.stack([render(s, rng) for s in chosen])
    return images, [s.caption for s in chosen]


def to_tensor(images):
    """uint8 (B, H, W, 3) → float (B, 3, H, W) in [-1, 1]."""
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def shape_mask(images):
    """(B, 1, H, W) 1.0 where a pixel differs from the background (the corner pixel is always background)."""
    import torch

    arr = torch.from_numpy(images)
    return (arr != arr[:, :1, :1, :]).any(-1).float().unsqueeze(1)
