"""huggingface_hub and httpx errors → one-line ``DownloadError``s that say what to do."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import DownloadError
from .disk import file_size, format_size


class hub_errors:
    """Map huggingface_hub/httpx errors to one-line ``DownloadError``s (``raise … from exc``)."""

    def __init__(self, repo_id: str, revision: str, partial: Path | None = None):
        self.repo_id, self.revision, self.partial = repo_id, revision, partial

    def __enter__(self) -> hub_errors:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, (DownloadError, KeyboardInterrupt)) or not isinstance(exc, Exception):
            return False
        message = self._message(exc)
        if message is None:
            return False
        raise DownloadError(message) from exc

    def _message(self, exc: Exception) -> str | None:
        import httpx2
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            OfflineModeIsEnabled,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        repo = self.repo_id
        kept = ""
        if self.partial is not None and file_size(self.partial):
            kept = f" ({format_size(file_size(self.partial))} of the current file kept)"
        if isinstance(exc, GatedRepoError):
            return (f"{repo} is gated: accept its licence at https://huggingface.co/{repo} and log in with "
                    "`hf auth login`, then pull again.")
        if isinstance(exc, RepositoryNotFoundError):
            return f"{repo} was not found on the Hugging Face Hub (or it is private); check the repo id."
        if isinstance(exc, RevisionNotFoundError):
            return f"Revision {self.revision!r} of {repo} does not exist on the Hub; the catalog entry needs updating."
        if isinstance(exc, OfflineModeIsEnabled):
            return "Downloads are switched off (HF_HUB_OFFLINE=1); unset HF_HUB_OFFLINE to pull models."
        if isinstance(exc, HfHubHTTPError):
            status = exc.response.status_code if exc.response is not None else "an error"
            return f"The Hugging Face Hub answered {status} for {repo}; try again later{kept}."
        if isinstance(exc, (httpx2.TransportError, ConnectionError, TimeoutError)):
            return (f"Cannot reach the Hugging Face Hub for {repo} ({type(exc).__name__}); check the network and "
                    f"pull again to resume{kept}.")
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc).splitlines()[0]
            return f"Download of {repo} failed ({reason}); pull again to resume{kept}."
        return None
