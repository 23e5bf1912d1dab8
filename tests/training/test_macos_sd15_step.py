"""On a Mac: what docs/STYLES.md estimates — one LCF step of SD1.5 at 512² with a rank-16 LoRA on MPS."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.macos
def test_an_sd15_lcf_step_on_mps_fits_the_documented_estimate():
    torch = pytest.importorskip("torch")
    if not torch.backends.mps.is_available():
        pytest.skip("MPS is not available on this Mac")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--device", "mps",
                           "--rounds", "1"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    print(proc.stdout)  # the table, for the docs
    row = re.search(r"\| LCF step \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) GiB \|", proc.stdout)
    assert row is not None, proc.stdout
    seconds, ratio, gib = (float(x) for x in row.groups())
    assert seconds < 15 and gib < 8  # docs/STYLES.md: ≈ 5 s (M1), ≈ 4 s (M2), ~2.5 GiB above the UNet
    assert 2 < ratio < 5  # two forwards and a backward
