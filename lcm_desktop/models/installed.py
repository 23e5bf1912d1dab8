"""What the model store reports: install states, where a model came from, and the rows of `models list`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class InstallState(StrEnum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    CORRUPT = "corrupt"


class Source(StrEnum):
    BUILTIN = "builtin"  # shipped with the app
    HUB = "hub"  # a catalog model in the Hugging Face cache
    IMPORTED = "imported"  # copied into the app's data folder
    COREML = "coreml"  # converted into the app's data folder
    CACHE = "cache"  # another tool's repo in the shared Hugging Face cache (listed for disk usage only)


COMPLETE, INCOMPLETE, CORRUPT = InstallState.COMPLETE, InstallState.INCOMPLETE, InstallState.CORRUPT


@dataclass(frozen=True)
class InstalledModel:
    name: str  # catalog id, imported name or Core ML folder name
    kind: str  # catalog kind; imported: "lcm" or "base"; "coreml"; "other" for foreign cache repos
    source: Source
    path: Path | None  # the folder to load (a snapshot folder for hub models)
    size_bytes: int
    status: InstallState
    detail: str = ""  # what is wrong, and the fix, when not complete
    repo_id: str | None = None
    commit: str | None = None


@dataclass(frozen=True)
class ModelRow:
    """One line of `models list`: a catalog entry (with its base, if it needs one) or an imported model."""

    name: str
    display: str
    kind: str
    state: InstallState | None  # None: not installed
    size_bytes: int
    path: Path | None
    approx: bool = False  # size_bytes is the catalog's download size, not what is on disk
    needs: str | None = None  # installed, but the base it needs is not complete
    non_commercial: bool = False  # its licence forbids commercial use (SD-Turbo, SDXL-Turbo): `models list` says so

    @property
    def usable(self) -> bool:
        return self.state is InstallState.COMPLETE and self.needs is None

    @property
    def installed(self) -> str:
        """For people: yes, no, incomplete, corrupt or needs <base>."""
        if self.state is None:
            return "no"
        if self.needs:
            return f"needs {self.needs}"
        return "yes" if self.state is InstallState.COMPLETE else self.state.value
