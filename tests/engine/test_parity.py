from __future__ import annotations

import math

import torch

from lcm_desktop.engine.engine import Engine
from lcm_desktop.engine.loaders import TorchLoader
from lcm_desktop.engine.parity import compare_components, psnr


def test_psnr_definition():
    ref = torch.tensor([1.0, -2.0, 0.5, 0.0])
    assert psnr(ref, ref) == math.inf
    noisy = ref + torch.tensor([0.02, -0.02, 0.02, -0.02])
    assert abs(psnr(ref, noisy) - 20 * math.log10(2.0 / 0.02)) < 0.01


def test_identical_backends_agree_and_lower_precision_is_measured(tiny_lcm):
    fp32 = Engine(tiny_lcm).components
    same = compare_components(fp32, Engine(tiny_lcm).components)
    assert set(same) == {"text_encoder", "denoiser", "decoder"} and all(v == math.inf for v in same.values())
    bf16 = compare_components(fp32, Engine(TorchLoader(tiny_lcm, dtype="bfloat16")).components)
    assert all(15 < v < 80 for v in bf16.values()), bf16
