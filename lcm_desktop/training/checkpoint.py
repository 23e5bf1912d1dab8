"""Resumable training state in ONE safetensors file: tensors as tensors, everything else as JSON — no pickle.

``<app cache>/training/<name>/checkpoint.safetensors`` holds

- ``param.<i>``: the trained weights (the LoRA's, or the UNet's with ``--full``), in the order of ``params``;
- ``ema.<i>``: their EMA (the LCF target θ⁻);
- ``opt.<i>.<key>``: AdamW's per-parameter state (``step``, ``exp_avg``, ``exp_avg_sq``);
- ``rng.run``: the run's own generator (batches, n, ε, w), so a resumed run draws what the uninterrupted one
  would have drawn (training never draws from, or sets, torch's global RNG: an older checkpoint's ``rng.torch``
  is ignored);

and in the metadata ``lcm_desktop_checkpoint``: the step, the run's fingerprint (model, method, rank, …) and the
optimiser's param groups.  It is written whole with ``publish_file(replace=True)``: a crash while saving leaves
the previous checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.atomic import publish_file
from ..core.errors import TrainingError

CHECKPOINT_FILE = "checkpoint.safetensors"
METADATA_KEY = "lcm_desktop_checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    step: int
    fingerprint: dict[str, Any]
    param_groups: list[dict[str, Any]]
    tensors: dict[str, torch.Tensor]
    losses: tuple[float, ...] = ()


def save_checkpoint(path: Path, *, step: int, params: list[torch.Tensor], ema: list[torch.Tensor],
                    optimizer: torch.optim.Optimizer, generator: torch.Generator, fingerprint: dict[str, Any],
                    losses: list[float] | tuple[float, ...] = ()) -> Path:
    """Write the whole training state to ``path`` atomically (replacing the previous checkpoint)."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    for i, (p, e) in enumerate(zip(params, ema)):
        tensors[f"param.{i}"] = p.detach().cpu().contiguous().clone()
        tensors[f"ema.{i}"] = e.detach().cpu().contiguous().clone()
    state = optimizer.state_dict()
    for i, per_param in state["state"].items():
        for key, value in per_param.items():
            value = value if torch.is_tensor(value) else torch.tensor(float(value))
            tensors[f"opt.{i}.{key}"] = value.detach().cpu().contiguous().clone()
    tensors["rng.run"] = generator.get_state().clone()
    meta = {"step": step, "fingerprint": fingerprint, "param_groups": state["param_groups"],
            "losses": [round(x, 6) for x in list(losses)[-1000:]]}
    data = save(tensors, metadata={"format": "pt", METADATA_KEY: json.dumps(meta)})
    path.parent.mkdir(parents=True, exist_ok=True)
    return publish_file(path, lambda handle: handle.write(data), replace=True)


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; a damaged one is a one-line error."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as handle:
            meta = json.loads((handle.metadata() or {})[METADATA_KEY])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types on a damaged file
        raise TrainingError(f"The checkpoint {path} cannot be read ({type(exc).__name__}); delete its folder "
                            f"{path.parent} to start over.") from exc
    return Checkpoint(int(meta["step"]), dict(meta["fingerprint"]), list(meta["param_groups"]), tensors,
                      tuple(meta.get("losses", ())))


def restore(checkpoint: Checkpoint, *, params: list[torch.nn.Parameter], ema: list[torch.Tensor],
            optimizer: torch.optim.Optimizer, generator: torch.Generator) -> None:
    """Put the checkpoint's weights, EMA, optimiser state and RNG states back in place."""
    t = checkpoint.tensors
    count = sum(1 for key in t if key.startswith("param."))
    if count != len(params):
        raise TrainingError(f"The checkpoint holds {count} weight tensors, this run trains {len(params)}; start "
                            "over with --force.")
    with torch.no_grad():
        for i, (p, e) in enumerate(zip(params, ema)):
            p.copy_(t[f"param.{i}"])
            e.copy_(t[f"ema.{i}"])
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in t.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": checkpoint.param_groups})
    generator.set_state(t["rng.run"])
