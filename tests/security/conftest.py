"""Hostile model folders, built by the tests from a copy of the shipped demo model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lcm_desktop.cli import builtin_model_path, main

# A module that leaves a marker file if it is ever imported or run.
PAYLOAD = "from pathlib import Path\nPath({marker!r}).write_text('payload ran')\nclass Payload: pass\n"


@pytest.fixture
def demo_copy(tmp_path) -> Path:
    """A private copy of the shipped demo model to damage (tmp_path/models/demo)."""
    return Path(shutil.copytree(builtin_model_path(), tmp_path / "models" / "demo"))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PAYLOAD-RAN"


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


@pytest.fixture
def cli_fails(capsys):
    """Run the CLI in-process; assert exit code 2 and one error line; return that line."""

    def run(*args) -> str:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        assert code == 2, captured.err
        return one_line_error(captured.err)

    return run


@pytest.fixture
def generate_fails(cli_fails, tmp_path):
    """`generate --model FOLDER` fails with one line and writes no image."""

    def run(folder: Path) -> str:
        out = tmp_path / "out"
        line = cli_fails("generate", "a red circle", "--model", folder, "--steps", "1", "--seed", "1", "--out", out)
        assert not out.exists() or not any(out.iterdir())
        return line

    return run
