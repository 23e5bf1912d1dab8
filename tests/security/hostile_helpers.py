"""Helpers for building hostile model folders and checking the CLI's one-line failures."""

from __future__ import annotations

import json
from pathlib import Path

# A module that leaves a marker file if it is ever imported or run.
PAYLOAD = "from pathlib import Path\nPath({marker!r}).write_text('payload ran')\nclass Payload: pass\n"


def write_payload(folder: Path, module: str, marker: Path, suffix: str = ".py") -> Path:
    path = folder / f"{module}{suffix}"
    path.write_text(PAYLOAD.format(marker=str(marker)), encoding="utf-8")
    return path


def edit_index(folder: Path, **entries) -> None:
    path = folder / "model_index.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **entries}), encoding="utf-8")


def one_line_error(err: str) -> str:
    """The CLI's failure contract: exactly one `error: …` line on stderr, no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]
