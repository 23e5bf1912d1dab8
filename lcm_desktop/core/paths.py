"""Where the app keeps its data, cache, outputs and logs, and where its resources live.

``resource_path()`` is the only code that knows about PyInstaller's ``sys._MEIPASS``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "LCM Desktop"
APP_AUTHOR = "LCM Desktop"

_ROOT = Path(__file__).resolve().parents[2]


def resource_path(*parts: str) -> Path:
    """Path of a file under ``resources/``, in a source checkout or inside a bundled app."""
    base = getattr(sys, "_MEIPASS", None)
    root = Path(base) if base else _ROOT
    return root.joinpath("resources", *parts)


def builtin_model_path() -> Path:
    """The built-in demo model shipped in ``resources/models/lcm-demo``."""
    return resource_path("models", "lcm-demo")


@dataclass(frozen=True)
class AppPaths:
    """The app's folders.  Nothing is created until ``ensure()`` is called."""

    data: Path
    cache: Path
    output: Path
    logs: Path

    @classmethod
    def default(cls) -> AppPaths:
        """Platform folders (platformdirs), overridable as a whole with ``LCM_DESKTOP_HOME``."""
        home = os.environ.get("LCM_DESKTOP_HOME")
        if home:
            root = Path(home)
            return cls(root / "data", root / "cache", root / "output", root / "logs")
        import platformdirs

        dirs = platformdirs.PlatformDirs(APP_NAME, APP_AUTHOR)
        return cls(
            data=Path(dirs.user_data_dir),
            cache=Path(dirs.user_cache_dir),
            output=Path(platformdirs.user_pictures_dir()) / APP_NAME,
            logs=Path(dirs.user_log_dir),
        )

    @property
    def log_file(self) -> Path:
        """The one log file: the app's log, and the CLI's record of an unexpected error (its traceback)."""
        return self.logs / "lcm-desktop.log"

    @property
    def starts(self) -> Path:
        """Copies of image-to-image starting images (sketches), named by the history."""
        return self.data / "starts"

    def ensure(self) -> AppPaths:
        for folder in (self.data, self.cache, self.output, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def converter_command() -> list[str]:
    """How to start the Core ML converter as a child process: the bundled ``lcm-convert`` or ``python -m convert``."""
    if getattr(sys, "frozen", False):
        exe = Path(sys.executable).resolve()
        candidates = [exe.parent.parent / "lcm-convert" / "lcm-convert",  # one-folder builds side by side
                      exe.parents[3] / "lcm-convert" / "lcm-convert" if len(exe.parents) > 3 else exe]
        for candidate in candidates:
            if candidate.is_file():
                return [str(candidate)]
    return [sys.executable, "-m", "convert"]
