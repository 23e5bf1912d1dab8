"""Download progress: the events a pull reports, and the tracker that makes them from tqdm updates."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import Cancelled, DownloadError


class DownloadCancelled(DownloadError, Cancelled):
    """The user cancelled a download; verified files and the partial file are kept for a resume."""

    @classmethod
    def for_repo(cls, repo_id: str) -> DownloadCancelled:
        return cls(f"Download of {repo_id} cancelled; finished and partial files are kept, pull again to resume.")


@dataclass(frozen=True)
class DownloadProgress:
    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int
    file: str | None = None  # the file being fetched, None between files


class ProgressTracker:
    """Turns huggingface_hub's tqdm updates into ``DownloadProgress`` events and checks cancel.

    Knows a pull only by its totals and the paths of its files, so it is testable on its own.
    """

    def __init__(self, repo_id: str, total_bytes: int, files_total: int,
                 callback: Callable[[DownloadProgress], None] | None, cancel: threading.Event):
        self.repo_id, self.total_bytes, self.files_total = repo_id, total_bytes, files_total
        self.callback, self.cancel = callback, cancel
        self.base = 0  # bytes of finished files
        self.partials: dict[str, int] = {}  # partial bytes of files not started yet
        self.files_done = 0
        self.current: str | None = None  # the path of the file being fetched
        self.current_bytes = 0

    def start(self, bytes_done: int, files_done: int, partials: dict[str, int]) -> None:
        self.base, self.files_done, self.partials = bytes_done, files_done, dict(partials)
        self._emit()

    def begin_file(self, path: str, present: int) -> None:
        """``path`` starts (or restarts after a refused resume) with ``present`` bytes already on disk."""
        self.partials.pop(path, None)
        self.current, self.current_bytes = path, present
        self._emit()

    def advance(self, n: float | None) -> None:
        self.current_bytes += int(n or 0)
        self._emit()
        if self.cancel.is_set():
            raise DownloadCancelled.for_repo(self.repo_id)

    def end_file(self, size: int) -> None:
        """The current file is verified and in place; ``size`` is its full size."""
        self.base += size
        self.files_done += 1
        self.current, self.current_bytes = None, 0
        self._emit()

    def finish(self) -> None:
        self._emit()

    def bar_class(self):
        tracker = self

        class _Bar:  # the part of tqdm's interface that http_get uses
            def __init__(self, *args, initial: int = 0, **kwargs):
                tracker.current_bytes = int(initial or 0)  # 0 again if the server ignored our Range

            def __enter__(self):
                return self

            def __exit__(self, *exc) -> bool:
                return False

            def update(self, n: float | None = 1) -> None:
                tracker.advance(n)

            def close(self) -> None:
                pass

        return _Bar

    def _emit(self) -> None:
        if self.callback is not None:
            done = self.base + sum(self.partials.values()) + (self.current_bytes if self.current else 0)
            self.callback(DownloadProgress(done, self.total_bytes, self.files_done, self.files_total, self.current))
