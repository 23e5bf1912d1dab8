"""Attention for the Apple Neural Engine ("split einsum") as a diffusers attention processor.

Apple's principles for transformers on the ANE ("Deploying Transformers on the Apple Neural
Engine", 2022): keep tensors at rank ≤ 4 in a channels-first ``(B, C, 1, S)`` layout, whose last
axis is the sequence; split multi-head attention into one small attention per head (a list of
einsums) instead of one rank-5 batched matmul with head reshapes and transposes, which the ANE
compiler handles badly.  This processor does that for the attention core; the projections
(``to_q``/``to_k``/``to_v``/``to_out``) stay the module's own.  In fp32 it computes the same
function as diffusers' ``AttnProcessor``; ``tests/convert`` checks that numerically.
"""

from __future__ import annotations

import torch

from lcm_desktop.core.errors import ConversionError


def _split_heads_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: int,
                           scale: float) -> torch.Tensor:
    """Per-head attention in the ANE layout.

    query: (B, C, 1, Sq); key, value: (B, C, 1, Sk) with C = heads × head_dim → (B, C, 1, Sq).
    """
    head_dim = query.shape[1] // heads
    key_t = key.transpose(1, 3)  # (B, Sk, 1, C): channels last, so each head's slice is a row block
    outputs = []
    for h in range(heads):
        cols = slice(h * head_dim, (h + 1) * head_dim)
        q_h = query[:, cols]  # (B, d, 1, Sq)
        k_h = key_t[:, :, :, cols]  # (B, Sk, 1, d)
        v_h = value[:, cols]  # (B, d, 1, Sk)
        weights = torch.einsum("bchq,bkhc->bkhq", q_h, k_h) * scale  # (B, Sk, 1, Sq)
        weights = weights.softmax(dim=1)
        outputs.append(torch.einsum("bkhq,bchk->bchq", weights, v_h))  # (B, d, 1, Sq)
    return torch.cat(outputs, dim=1)


class SplitEinsumAttnProcessor:
    """Drop-in replacement for diffusers' ``AttnProcessor`` (self- and cross-attention, no mask)."""

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 *args, **kwargs) -> torch.Tensor:
        if attention_mask is not None:
            raise ConversionError("split_einsum attention does not support attention masks; use --attention original.")
        if getattr(attn, "norm_q", None) is not None or getattr(attn, "norm_k", None) is not None:
            raise ConversionError(
                "split_einsum attention does not support q/k normalisation; use --attention original."
            )
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channels, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        # (B, S, C) → (B, C, 1, S)
        query = attn.to_q(hidden_states).transpose(1, 2).unsqueeze(2)
        key = attn.to_k(context).transpose(1, 2).unsqueeze(2)
        value = attn.to_v(context).transpose(1, 2).unsqueeze(2)

        out = _split_heads_attention(query, key, value, attn.heads, attn.scale)
        hidden_states = out.squeeze(2).transpose(1, 2)  # (B, Sq, C)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)

        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channels, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def set_attention(module: torch.nn.Module, attention: str) -> None:
    """Install ``"split_einsum"`` (Neural Engine) or ``"original"`` (GPU/CPU) attention in a diffusers model."""
    from diffusers.models.attention_processor import AttnProcessor

    if attention == "split_einsum":
        module.set_attn_processor(SplitEinsumAttnProcessor())
    elif attention == "original":
        module.set_attn_processor(AttnProcessor())
    else:
        raise ConversionError(f"attention must be 'split_einsum' or 'original', got {attention!r}.")
