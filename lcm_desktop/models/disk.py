"""Disk facts for downloads and imports: free space where a folder will be, sizes, and their display."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

DiskUsage = Callable[[str], Any]  # shutil.disk_usage-like: returns an object with .free


def free_space(folder: Path, disk_usage: DiskUsage = shutil.disk_usage) -> tuple[int, Path]:
    """Free bytes on the disk that holds (or will hold) ``folder``, and the existing folder measured."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return disk_usage(str(probe)).free, probe


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def format_size(n: int | float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
