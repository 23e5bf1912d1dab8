"""Silence the libraries' own progress bars and advisory warnings (the app reports progress itself)."""

from __future__ import annotations


def quiet_libraries() -> None:
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
