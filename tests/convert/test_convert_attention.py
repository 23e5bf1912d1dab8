"""split_einsum attention computes what diffusers' attention computes (fp32), in rank ≤ 4 tensors."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0
from torch.overrides import TorchFunctionMode

from convert.attention import SplitEinsumAttnProcessor, set_attention
from lcm_desktop.core.errors import ConversionError


def _run(attn: Attention, processor, *args, **kwargs) -> torch.Tensor:
    attn.set_processor(processor)
    with torch.no_grad():
        return attn(*args, **kwargs)


@pytest.mark.parametrize("cross", [False, True])
def test_equals_diffusers_attention_for_self_and_cross_attention(cross):
    torch.manual_seed(0)
    attn = Attention(query_dim=64, cross_attention_dim=48 if cross else None, heads=8, dim_head=8).eval()
    x = torch.randn(2, 37, 64)
    context = torch.randn(2, 77, 48) if cross else None
    ref = _run(attn, AttnProcessor2_0(), x, encoder_hidden_states=context)
    classic = _run(attn, AttnProcessor(), x, encoder_hidden_states=context)
    ours = _run(attn, SplitEinsumAttnProcessor(), x, encoder_hidden_states=context)
    assert ours.shape == ref.shape == (2, 37, 64)
    assert torch.allclose(ours, ref, rtol=0, atol=2e-6) and torch.allclose(ours, classic, rtol=0, atol=2e-6)
    assert ref.abs().mean() > 1e-2  # a real signal, not zeros


def test_equals_diffusers_attention_in_the_vae_layout():
    """VAE mid-block style: 4-D input, group norm, one head, residual connection, rescaled output."""
    torch.manual_seed(1)
    attn = Attention(query_dim=32, heads=1, dim_head=32, norm_num_groups=8, residual_connection=True,
                     rescale_output_factor=2.0, bias=True, upcast_softmax=True, _from_deprecated_attn_block=True).eval()
    x = torch.randn(1, 32, 6, 5)
    ref, ours = _run(attn, AttnProcessor2_0(), x), _run(attn, SplitEinsumAttnProcessor(), x)
    assert ours.shape == (1, 32, 6, 5) and torch.allclose(ours, ref, rtol=0, atol=2e-6)


class _RankRecorder(TorchFunctionMode):
    """Every torch function the processor calls (what the converter sees), with its output's rank."""

    def __init__(self):
        super().__init__()
        self.ranks: list[tuple[str, int]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.ranks.append((getattr(func, "__name__", str(func)), t.ndim))
        return out


def test_keeps_every_tensor_at_rank_four_or_less():
    torch.manual_seed(2)
    attn = Attention(query_dim=32, cross_attention_dim=16, heads=4, dim_head=8).eval()
    attn.set_processor(SplitEinsumAttnProcessor())
    recorder = _RankRecorder()
    x, context = torch.randn(1, 10, 32), torch.randn(1, 77, 16)
    with torch.no_grad(), recorder:
        attn(x, encoder_hidden_states=context)
    assert recorder.ranks and max(rank for _, rank in recorder.ranks) <= 4
    softmaxes = [name for name, _ in recorder.ranks if "softmax" in name]
    assert len(softmaxes) == 4  # one attention per head


def test_whole_unet_is_unchanged_in_fp32(tiny_lcm):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_lcm / "unet").eval()
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(1, 4, 8, 8, generator=g), torch.tensor(499.0), torch.randn(1, 77, 32, generator=g))
    cond = torch.randn(1, 32, generator=g)
    with torch.no_grad():
        ref = unet(*args, timestep_cond=cond).sample
        set_attention(unet, "split_einsum")
        ours = unet(*args, timestep_cond=cond).sample
    assert all(isinstance(p, SplitEinsumAttnProcessor) for p in unet.attn_processors.values())
    assert ((ours - ref).norm() / ref.norm()).item() < 1e-6


def test_masks_and_unknown_names_are_refused():
    attn = Attention(query_dim=16, heads=2, dim_head=8)
    attn.set_processor(SplitEinsumAttnProcessor())
    with pytest.raises(ConversionError, match="attention masks"):
        attn(torch.randn(1, 4, 16), attention_mask=torch.ones(1, 4))
    with pytest.raises(ConversionError, match="'flash'"):
        set_attention(torch.nn.Module(), "flash")
