"""Shared plumbing of the training stages: paths, seeding, threads, resumable checkpoints."""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path

log = logging.getLogger("convert.demo_model")

WORK = Path("work-demo")
REPO_MODELS = Path("resources/models")
SHIPPED = REPO_MODELS / "lcm-demo"
TEACHER_SHIPPED = REPO_MODELS / "lcm-demo-teacher"


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
    """Atomic torch.save (temp + rename) so an interrupted stage resumes from a whole file."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict | None:
    import torch

    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def resume(path: Path, model, opt, rng: random.Random, label: str) -> tuple[int, random.Random]:
    """Load a picture stage's checkpoint (model, optimiser, data RNG, global RNGs) if there is one.

    Returns the step to start from and the data RNG to go on with."""
    state = load_checkpoint(path)
    if state is None:
        return 0, rng
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    set_rng_state(state["rng_state"])
    log.info("%s: resumed at step %d", label, state["step"])
    return state["step"], state["rng"]


def save_resumable(path: Path, model, opt, step: int, rng: random.Random) -> None:
    """The checkpoint :func:`resume` reads."""
    save_checkpoint(path, {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "rng": rng,
                           "rng_state": rng_state()})


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
