"""One `python -m convert` run shared by the command-line tests that only read what it printed and wrote."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cli_vae_decoder(tmp_path_factory, tiny_lcm) -> tuple[Path, str]:
    """(the folder, its stdout) of ``python -m convert TINY --out … --components vae_decoder``, run in-process
    once per session. Read-only: a test that changes a conversion copies the folder first."""
    from convert.__main__ import main

    out = tmp_path_factory.mktemp("cli-conversion") / "vae-decoder"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main([str(tiny_lcm), "--out", str(out), "--components", "vae_decoder"])
    assert code == 0, printed.getvalue()
    return out, printed.getvalue()
