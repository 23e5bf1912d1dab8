"""Training pictures for tests: flat-coloured squares written as PNGs (optionally with .txt captions)."""

from __future__ import annotations

from pathlib import Path


def write_pictures(folder: Path, count: int = 4, size: int = 64, captions: bool = False) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        a = np.zeros((size, size, 3), np.uint8)
        a[:] = (240, 120, 200) if i % 2 else (30, 170, 50)
        lo = size // 8 + i * size // 16
        a[lo : lo + size // 3, size // 6 : size // 2] = (245, 245, 245)
        Image.fromarray(a).save(folder / f"pic{i}.png")
        if captions:
            (folder / f"pic{i}.txt").write_text(f"a pink square number {i}\n", encoding="utf-8")
    return folder
