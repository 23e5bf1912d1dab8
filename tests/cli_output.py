"""Reading what a command-line entry point printed."""

from __future__ import annotations

import re


def error_line(stderr: str) -> str:
    """The one error line (in-process, the libraries' progress bars share stderr; see the subprocess test)."""
    lines = [line for line in re.split(r"[\r\n]+", stderr) if line.startswith("error: ")]
    assert len(lines) == 1 and stderr.rstrip().endswith(lines[0]), stderr
    return lines[0]
