"""Fixtures of the training tests: a folder of pictures; one torch thread."""

from __future__ import annotations

from pathlib import Path

import pytest
from training.pictures import write_pictures


@pytest.fixture
def pictures(tmp_path) -> Path:
    return write_pictures(tmp_path / "pictures")


@pytest.fixture(autouse=True)
def _one_thread():
    """The machine is shared: one torch thread keeps the tests' timings stable."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
