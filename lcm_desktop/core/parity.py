"""PSNR, and the thresholds a converted component must reach against PyTorch (numpy only).

PSNR as Apple's ml-stable-diffusion reports it: 20·log10(max|reference| / RMSE).  35 dB is Apple's
bar for an fp16 package; palettized weights lose more, so their bars were measured (convert/validate.py
says how) and sit a few dB below the worst component seen at each width.  The converter, the engine's
component comparison and ``doctor`` all read these.
"""

from __future__ import annotations

import math

import numpy as np

MIN_PSNR_DB = 35.0
PALETTIZED_MIN_PSNR_DB = {8: 35.0, 6: 30.0, 4: 20.0}


def min_psnr_db(palettize_bits: int | None) -> float:
    """The PSNR a package must reach against PyTorch: 35 dB at fp16, less for palettized weights."""
    return MIN_PSNR_DB if palettize_bits is None else PALETTIZED_MIN_PSNR_DB[palettize_bits]


def psnr(test: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, the peak being the reference's largest magnitude (inf when equal)."""
    test, reference = np.asarray(test, np.float64), np.asarray(reference, np.float64)
    mse = float(np.mean((test - reference) ** 2))
    if mse == 0.0:
        return math.inf
    return 20.0 * math.log10(max(float(np.abs(reference).max()), 1e-12) / math.sqrt(mse))
