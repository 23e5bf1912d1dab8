"""Hostile model folders, built by the tests from a copy of the shipped demo model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from security.hostile_helpers import one_line_error

from lcm_desktop.cli import main
from lcm_desktop.core.paths import builtin_model_path


@pytest.fixture
def demo_copy(tmp_path) -> Path:
    """A private copy of the shipped demo model to damage (tmp_path/models/demo)."""
    return Path(shutil.copytree(builtin_model_path(), tmp_path / "models" / "demo"))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PAYLOAD-RAN"


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
