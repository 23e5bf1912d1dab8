"""Component-by-component agreement of two backends (e.g. Core ML vs PyTorch) through the loop's Protocols.

PSNR and its thresholds are ``core.parity``'s (Apple's 20·log10(max|reference| / RMSE), pass at ≥ 35 dB).
Inputs are random but seeded, shaped as the candidate accepts them.
"""

from __future__ import annotations

import torch

from ..core.parity import psnr as core_psnr
from .components import ModelComponents
from .sampler import guidance_embedding

PROMPT = "a photo of an astronaut riding a horse on the moon"


def psnr(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    return core_psnr(candidate.double().cpu().numpy(), reference.double().cpu().numpy())


@torch.inference_mode()
def compare_components(reference: ModelComponents, candidate: ModelComponents, seed: int = 0) -> dict[str, float]:
    """PSNR (dB) of the candidate's text encoder, denoiser and decoder against the reference's."""
    gen = torch.Generator("cpu").manual_seed(seed)
    results = {}
    ref_text = reference.text_encoder.encode(PROMPT)
    cand_text = candidate.text_encoder.encode(PROMPT)
    results["text_encoder"] = psnr(ref_text.hidden_states, cand_text.hidden_states)

    info = candidate.denoiser.info
    if info.fixed_shape is not None:
        _, channels, h, w = info.fixed_shape
    else:
        channels, h, w = info.in_channels, info.sample_size, info.sample_size
    sample = torch.randn((1, channels, h, w), generator=gen)
    timestep = torch.tensor(499)
    cond = None
    if info.time_cond_proj_dim is not None:
        cond = guidance_embedding(torch.tensor([7.5]), info.time_cond_proj_dim)
    extra = {}
    if info.addition_time_embed and ref_text.pooled is not None:
        side = [h * candidate.decoder.scale_factor, w * candidate.decoder.scale_factor]
        extra = {"text_embeds": ref_text.pooled.float(), "time_ids": torch.tensor([side + [0, 0] + side],
                                                                                   dtype=torch.float32)}

    def run(den):
        kw = {k: v.to(den.device, den.dtype) for k, v in extra.items()}
        return den(sample.to(den.device, den.dtype), timestep.to(den.device),
                   ref_text.hidden_states.to(den.device, den.dtype),
                   timestep_cond=None if cond is None else cond.to(den.device, den.dtype), **kw).float()

    results["denoiser"] = psnr(run(reference.denoiser), run(candidate.denoiser))
    latents = torch.randn((1, channels, h, w), generator=gen)
    results["decoder"] = psnr(reference.decoder.decode(latents), candidate.decoder.decode(latents))
    return results
