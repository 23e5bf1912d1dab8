"""When a VAE runs in float32 although the model runs in float16: diffusers' rule, in one place.

diffusers' SDXL-class pipelines upcast a VAE whose config says ``force_upcast`` (``AutoencoderKL``'s default:
True) to float32 for encoding and decoding (``upcast_vae``; SDXL's VAE overflows in fp16).  Its SD-class
pipelines — ``StableDiffusion(Img2Img)Pipeline``, ``LatentConsistencyModel(Img2Img)Pipeline`` — never read the
flag: the VAE runs in the model's dtype, although ``save_pretrained`` writes ``force_upcast: true`` into almost
every SD1.5 VAE config (the built-in model's too).  The engine (``engine.torch_backend``) and the converter
(``convert.components``) ask here, so both compute what diffusers computes (issue 25 item 9: the engine once
upcast SD-class VAEs as well, and its fp16 image-to-image drifted from diffusers').
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def vae_runs_in_fp32(family: str, vae_config: Mapping[str, Any]) -> bool:
    """True when a half-precision model keeps its VAE in float32: SDXL-class with ``force_upcast`` (default True)."""
    return family == "sdxl" and bool(vae_config.get("force_upcast", True))
