"""The demo model's work folder and the stages' shared plumbing: every path a stage reads or
writes, the training summary, seeding and threads, resumable checkpoints.

Paths are anchored on the repository, not on the working directory, so the stages and
``eval`` behave the same wherever they are started from.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import time
from pathlib import Path

from lcm_desktop.core.atomic import publish_file

log = logging.getLogger("convert.demo_model")

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / "work-demo"
REPO_MODELS = REPO / "resources" / "models"
SHIPPED = REPO_MODELS / "lcm-demo"
TEACHER_SHIPPED = REPO_MODELS / "lcm-demo-teacher"
DOC = REPO / "docs" / "DEMO_MODEL.md"

VAE_CKPT = WORK / "vae" / "ckpt.pt"
VAE_FINAL = WORK / "vae" / "final"
LATENTS = WORK / "latents.pt"
TOKENIZER_DIR = WORK / "tokenizer"
TEACHER_CKPT = WORK / "teacher" / "ckpt.pt"
TEACHER_FINAL = WORK / "teacher" / "final"
DISTILL_CKPT = WORK / "distill" / "ckpt.pt"
DISTILL_FINAL = WORK / "distill" / "final"
RESULTS = WORK / "eval.json"
SUMMARY = WORK / "summary.json"
SHIPPED_SUMMARY_NAME = "training.json"  # the stages' settings, shipped so `eval` on a fresh clone can write the card


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text`` (UTF-8), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    publish_file(path, lambda f: f.write(text.encode("utf-8")), replace=True)


def load_summary() -> dict:
    """The training stages' settings: this machine's work folder, else the copy shipped with the model."""
    for path in (SUMMARY, SHIPPED / SHIPPED_SUMMARY_NAME):
        if path.is_file():
            return json.loads(path.read_text())
    return {}


def record_summary(stage: str, **values) -> None:
    """Remember a stage's settings and wall time for the model card."""
    data = json.loads(SUMMARY.read_text()) if SUMMARY.is_file() else {}
    data[stage] = values
    write_text(SUMMARY, json.dumps(data, indent=2))


def setup_torch(seed: int, threads: int | None = None):
    """Seed everything and set torch's threads: ``DEMO_THREADS`` (default 1). On a shared 2-core
    box a second OpenMP thread spin-waits on a busy core and makes every step several times slower
    (measured 3.4 s vs 0.48 s); on an idle one ``DEMO_THREADS=2`` is about 1.6× faster."""
    import numpy as np
    import torch

    torch.set_num_threads(threads or int(os.environ.get("DEMO_THREADS", "1")))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic torch.save, so an interrupted stage resumes from a whole file."""
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    publish_file(path, lambda f: f.write(buffer.getbuffer()), replace=True)


def load_checkpoint(path: Path) -> dict | None:
    import torch

    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def resume(path: Path, modules: dict, rng: random.Random | None, label: str) -> tuple[int, random.Random | None]:
    """Load a stage's checkpoint into ``modules`` (name → model or optimiser) and restore the global
    RNGs, if there is a checkpoint.

    Returns the step to start from and the data RNG to go on with (``rng`` itself when starting afresh)."""
    state = load_checkpoint(path)
    if state is None:
        return 0, rng
    for name, module in modules.items():
        module.load_state_dict(state[name])
    set_rng_state(state["rng_state"])
    log.info("%s: resumed at step %d", label, state["step"])
    return state["step"], state.get("rng")


def save_resumable(path: Path, modules: dict, step: int, rng: random.Random | None = None) -> None:
    """The checkpoint :func:`resume` reads: every module's state under its name, the step and the RNGs."""
    state = {name: module.state_dict() for name, module in modules.items()}
    state.update(step=step, rng=rng, rng_state=rng_state())
    save_checkpoint(path, state)


def rng_state() -> dict:
    import numpy as np
    import torch

    return {"py": random.getstate(), "np": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    import numpy as np
    import torch

    random.setstate(state["py"])
    np.random.set_state(state["np"])
    torch.set_rng_state(state["torch"])


def cosine_lr(step: int, total: int, base: float, warmup: int = 100, floor: float = 0.05) -> float:
    import math

    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(total - warmup, 1)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))


class Meter:
    """Running mean of a loss and steps per second, for the log line."""

    def __init__(self) -> None:
        self.total, self.n, self.t0 = 0.0, 0, time.time()

    def add(self, value: float) -> None:
        self.total += value
        self.n += 1

    def line(self) -> str:
        dt = time.time() - self.t0
        out = f"loss {self.total / max(self.n, 1):.5f}  {self.n / max(dt, 1e-9):.2f} it/s"
        self.total, self.n, self.t0 = 0.0, 0, time.time()
        return out
