"""What the LCM loop needs from a backend: a text encoder, a denoiser and a decoder.

Backends (PyTorch modules on mps/cuda/cpu, Core ML models on the Neural Engine or GPU) hand the
sampler objects with these shapes; the loop itself is written once, in ``sampler.py``.
All tensors crossing these interfaces are ``torch.Tensor``; a backend that computes elsewhere
(Core ML works on numpy) converts at its own boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import torch

from ..core.request import LoraWeight
from .prompt_fit import PromptFit

ModelFamily = Literal["sd", "sdxl"]


@dataclass(frozen=True)
class PromptEmbedding:
    """One encoded prompt.

    hidden_states: (1, 77·k, D) — k chunks of 77 tokens (``prompt_encoding.py``); for SDXL the two
        encoders' penultimate states concatenated along D.
    pooled: (1, P) — SDXL only: the second encoder's projected pooled output (of the first chunk).
    """

    hidden_states: torch.Tensor
    pooled: torch.Tensor | None = None


@runtime_checkable
class TextEncoder(Protocol):
    def fit(self, prompt: str) -> PromptFit:
        """How much of ``prompt`` this encoder can take (the engine encodes only ``fit(prompt).used``)."""

    def encode(self, prompt: str) -> PromptEmbedding:
        """Parse (AUTOMATIC1111 syntax), chunk, encode and weight one prompt (``prompt_encoding.py``)."""


@dataclass(frozen=True)
class DenoiserInfo:
    """Static facts about a denoiser (UNet) the loop plans with."""

    in_channels: int
    sample_size: int  # native latent side; native image side = sample_size * vae_scale_factor
    time_cond_proj_dim: int | None  # set: guidance-embedding LCM (one call per step, no CFG batch)
    addition_time_embed: bool = False  # SDXL-class: needs text_embeds + time_ids
    fixed_shape: tuple[int, int, int, int] | None = None  # Core ML: the one (B, C, h, w) it was converted for


@dataclass(frozen=True)
class ControlResiduals:
    """What a step's controls add to the UNet (``engine/controls.py``); ``None`` parts add nothing.

    down: a ControlNet's residuals after each down-block layer (``down_block_additional_residuals``);
    mid: its mid-block residual; intrablock: a T2I-Adapter's features, one per down block
    (``down_intrablock_additional_residuals``).  Each has the UNet input's batch (B, or 2B with CFG).
    """

    down: tuple[torch.Tensor, ...] | None = None
    mid: torch.Tensor | None = None
    intrablock: tuple[torch.Tensor, ...] | None = None


@runtime_checkable
class Denoiser(Protocol):
    info: DenoiserInfo
    device: torch.device
    dtype: torch.dtype

    def __call__(
        self,
        sample: torch.Tensor,  # (B, 4, h, w)
        timestep: torch.Tensor,  # () or (B,)
        encoder_hidden_states: torch.Tensor,  # (B, 77·k, D)
        *,
        timestep_cond: torch.Tensor | None = None,  # (B, time_cond_proj_dim)
        text_embeds: torch.Tensor | None = None,  # (B, P) SDXL
        time_ids: torch.Tensor | None = None,  # (B, 6) SDXL
        residuals: ControlResiduals | None = None,  # structure controls (PyTorch only)
    ) -> torch.Tensor:
        """Predicted noise, (B, 4, h, w)."""


@runtime_checkable
class Decoder(Protocol):
    scale_factor: int  # pixels per latent cell (8 for SD)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, 4, h, w), as the sampler makes them → images (B, 3, H, W) in [-1, 1], float32, CPU.

        The decoder applies its own ``scaling_factor`` (AutoencoderKL: 0.18215 for SD; AutoencoderTiny: 1.0).
        """


@runtime_checkable
class ImageEncoder(Protocol):
    def encode(self, images: torch.Tensor, generators: list[torch.Generator] | None = None) -> torch.Tensor:
        """Images (1 or B, 3, H, W) in [-1, 1] → scaled latents (B, 4, H/8, W/8), for image-to-image.

        With ``generators`` (B CPU generators, one per image of the batch) row i is a sample of the VAE's
        posterior drawn from ``generators[i]``, as diffusers' ``retrieve_latents(vae.encode(x), generator)``
        (one image is encoded once and sampled B times); ``None`` → the posterior's mean.  A tiny
        autoencoder (AutoencoderTiny) has no posterior: its latents are the same for every generator.
        The encoder applies its own ``scaling_factor`` (and SDXL's latents mean/std).
        """


@dataclass(frozen=True)
class StyleState:
    """The styles active after ``StyleAdapters.apply``.

    text_key: identifies the text encoders' LoRA state (which styles touch them, at which weights): the
        engine's prompt-embedding cache is keyed on it, so an embedding is never reused across weights.
    hashes: (style name, AUTOMATIC1111 short hash) of each style, in request order (for ``Lora hashes``).
    """

    text_key: tuple = ()
    hashes: tuple[tuple[str, str], ...] = ()


@runtime_checkable
class StyleAdapters(Protocol):
    def apply(self, loras: tuple[LoraWeight, ...], resolve: Callable[[str], Path]) -> StyleState:
        """Make exactly ``loras`` active at their weights (``()``: none), loading each file once;
        ``resolve(name)`` gives a style's file (it raises for an unknown name)."""


@dataclass
class ModelComponents:
    """Everything one loaded model offers the loop."""

    name: str
    family: ModelFamily
    text_encoder: TextEncoder
    denoiser: Denoiser
    decoder: Decoder
    scheduler_config: dict[str, Any]
    image_encoder: ImageEncoder | None = None
    tiny_decoder: Decoder | None = None  # cheap previews / fast final decode (AutoencoderTiny)
    tiny_image_encoder: ImageEncoder | None = None  # the same tiny autoencoder's encoder: fast image-to-image
    force_zeros_for_empty_prompt: bool = True  # SDXL: zero negative embeddings when no negative prompt
    backend: str = "torch"
    styles: StyleAdapters | None = None  # live style LoRAs (PyTorch); None: styles are baked in (Core ML)
    controls: Any = None  # engine.controls.TorchControlModels (PyTorch); None: this backend takes no controls
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def native_size(self) -> tuple[int, int]:
        side = self.denoiser.info.sample_size * self.decoder.scale_factor
        return side, side
