"""The training child's machine-readable lines, written by ``train-style --progress json`` and read by the app.

The app runs a training as a child process (``python -m lcm_desktop train-style … --progress json
--preview-dir DIR``), as it runs the converter: the model the child loads, and its memory, never enter the app's
process, and torch's process-wide state (RNG, thread pool) stays the app's own.  Each line on stdout is ``PREFIX``
and one JSON object:

    lcm-train {"event": "step", "step": 3, "total": 1000, "loss": 0.0123, "eta": 412.5, "preview": "/…/3.png"}
    lcm-train {"event": "note", "message": "1 caption longer than 75 tokens was cut to the first 75."}
    lcm-train {"event": "done", "output": "/…/styles/name.safetensors"}

Errors are the CLI's one line on stderr and its exit code (2; a cancel is 130, its checkpoint kept).  Plain
Python: no torch, no Qt.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

PREFIX = "lcm-train "
MAX_LINE = 10_000  # a line longer than this is not ours
EVENTS = ("step", "note", "done")


@dataclass(frozen=True)
class TrainEvent:
    """One line from the child.  ``step``: progress (``preview`` a PNG the child wrote, or None); ``note``: a
    one-line message; ``done``: ``output`` is the style file (or model folder)."""

    event: str
    step: int = 0
    total: int = 0
    loss: float = math.nan
    eta_seconds: float = 0.0
    preview: Path | None = None
    message: str = ""
    output: Path | None = None


def step_line(step: int, total: int, loss: float, eta_seconds: float, preview: Path | None = None) -> str:
    return PREFIX + json.dumps({"event": "step", "step": step, "total": total, "loss": loss,
                                "eta": round(eta_seconds, 1), "preview": str(preview) if preview else None})


def note_line(message: str) -> str:
    return PREFIX + json.dumps({"event": "note", "message": message})


def done_line(output: Path) -> str:
    return PREFIX + json.dumps({"event": "done", "output": str(output)})


def parse_line(line: str) -> TrainEvent | None:
    """The event a line holds, or None for any other line (library chatter, a damaged line)."""
    if not line.startswith(PREFIX) or len(line) > MAX_LINE:
        return None
    try:
        data = json.loads(line[len(PREFIX):])
        event = data["event"]
        if event not in EVENTS:
            return None
        if event == "step":
            preview = data.get("preview")
            return TrainEvent("step", int(data["step"]), int(data["total"]), float(data["loss"]),
                              float(data["eta"]), Path(preview) if preview else None)
        if event == "note":
            return TrainEvent("note", message=str(data["message"]))
        return TrainEvent("done", output=Path(data["output"]))
    except (ValueError, KeyError, TypeError):
        return None
