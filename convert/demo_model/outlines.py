"""Outlines of the demo scenes' shapes: the scribble control's input (white lines on black, ControlNet 1.1's
convention), drawn at the same centre and size as the scene's shape.

Pure numpy + Pillow, like ``data.py``. ``render_pair`` draws one training pair (scene, outline) with the same
jitter ``data.render`` uses; ``outline`` draws a shape's outline anywhere (the evaluation puts it where the
caption's words do not).
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw

from convert.demo_model.data import COLOURS, IMAGE_SIZE, JITTER, POSITIONS, SIZES, Scene, draw_shape, shape_polygon

LINE_WIDTHS = (1, 2, 3)  # a drawn line's width in pixels at 64×64 (a pen of 2–6 px at 128²)


def outline(shape: str, cx: float, cy: float, r: float, width: int = 2) -> np.ndarray:
    """(64, 64, 3) uint8: the outline of ``shape`` (half-extent ``r``, centre (cx, cy)) in white on black."""
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (0, 0, 0))
    draw = ImageDraw.Draw(img)
    white = (255, 255, 255)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=white, width=width)
    elif shape == "square":
        q = r * 0.85
        draw.rectangle([cx - q, cy - q, cx + q, cy + q], outline=white, width=width)
    elif shape == "triangle":
        pts = shape_polygon(shape, cx, cy, r)
        draw.line([*pts, pts[0]], fill=white, width=width, joint="curve")
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(img, dtype=np.uint8)


def render_pair(scene: Scene, rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    """(scene picture, outline of its shape), both (64, 64, 3) uint8, with ``data.render``'s jitter."""
    cx, cy = POSITIONS[scene.position]
    cx += rng.randint(-JITTER, JITTER)
    cy += rng.randint(-JITTER, JITTER)
    r = SIZES[scene.size] + rng.randint(-1, 1)
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), COLOURS[scene.background])
    draw_shape(ImageDraw.Draw(img), scene.shape, cx, cy, r, COLOURS[scene.shape_colour])
    return np.asarray(img, dtype=np.uint8), outline(scene.shape, cx, cy, r, rng.choice(LINE_WIDTHS))


def elsewhere(position: str) -> str:
    """The position the evaluation draws the outline at: the diagonally opposite corner (centre → top left)."""
    opposite = {"top left": "bottom right", "bottom right": "top left", "top right": "bottom left",
                "bottom left": "top right", "center": "top left"}
    return opposite[position]
