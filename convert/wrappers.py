"""Traceable wrappers with fixed, Apple-named inputs and outputs around diffusers/transformers modules.

Each wrapper's ``input_names``/``output_names`` are Apple ml-stable-diffusion's, in the order its
``forward`` takes and returns them; ``example_inputs()`` makes random inputs of the converted
shapes.  Layouts follow Apple's too: the UNet takes ``encoder_hidden_states`` channels-first as
(B, D, 1, 77·k) (k prompt chunks; Apple's is k = 1) and turns it back into diffusers' (B, 77·k, D)
itself; the text encoder takes ``input_ids`` as float32 (Core ML's friendliest input type) and casts them to integers.
"""

from __future__ import annotations

import torch
from torch import nn

from lcm_desktop.core.mask import INPAINT_CHANNELS, INPAINT_INPUTS, LATENT_CHANNELS

TOKENS = 77


class TextEncoderWrapper(nn.Module):
    """``input_ids`` (1, 77) float → ``last_hidden_state`` (1, 77, D), ``pooled_outputs`` (1, P).

    SDXL (``hidden_layer=-2``): the penultimate layer's states, named ``hidden_embeds`` as Apple
    does, and the projected pooled output (``text_embeds``) where the encoder has a projection.
    """

    def __init__(self, text_encoder: nn.Module, hidden_layer: int | None = None):
        super().__init__()
        self.text_encoder = text_encoder
        self.hidden_layer = hidden_layer
        self.input_names = ("input_ids",)
        self.output_names = ("last_hidden_state" if hidden_layer is None else "hidden_embeds", "pooled_outputs")

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids = input_ids.to(torch.int64)
        out = self.text_encoder(ids, output_hidden_states=self.hidden_layer is not None, return_dict=True)
        pooled = out.text_embeds if "text_embeds" in out else out.pooler_output
        if self.hidden_layer is None:
            return out.last_hidden_state, pooled
        return out.hidden_states[self.hidden_layer], pooled

    def example_inputs(self, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        vocab = self.text_encoder.config.vocab_size
        return (torch.randint(0, vocab, (1, TOKENS), generator=generator).to(torch.float32),)


class UnetWrapper(nn.Module):
    """``sample`` (B, 4, h, w), ``timestep`` (B,), ``encoder_hidden_states`` (B, D, 1, 77·prompt_chunks)
    [, ``time_ids`` (B, 6), ``text_embeds`` (B, P)] [, ``timestep_cond`` (B, time_cond_proj_dim)]
    [, ``mask`` (B, 1, h, w), ``masked_image_latents`` (B, 4, h, w): an inpainting UNet (9 input channels), whose
    three inputs are concatenated on channels inside the model, as diffusers' inpaint pipeline does]
    → ``noise_pred`` (B, 4, h, w).
    """

    def __init__(self, unet: nn.Module, *, batch_size: int, latent_hw: tuple[int, int],
                 text_embeds_dim: int | None = None, prompt_chunks: int = 1):
        super().__init__()
        self.unet = unet
        self.tokens = TOKENS * prompt_chunks
        config = unet.config
        self.batch_size = batch_size
        self.latent_hw = latent_hw
        self.addition_time_embed = config.addition_embed_type == "text_time"
        self.time_cond_proj_dim = config.time_cond_proj_dim
        self.text_embeds_dim = text_embeds_dim
        names = ["sample", "timestep", "encoder_hidden_states"]
        if self.addition_time_embed:
            names += ["time_ids", "text_embeds"]
        if self.time_cond_proj_dim:
            names.append("timestep_cond")
        self.inpainting = config.in_channels == INPAINT_CHANNELS
        if self.inpainting:
            names += list(INPAINT_INPUTS)
        self.input_names = tuple(names)
        self.output_names = ("noise_pred",)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        b, (h, w), cfg = self.batch_size, self.latent_hw, self.unet.config
        shapes = {
            "sample": (b, LATENT_CHANNELS if self.inpainting else cfg.in_channels, h, w),
            "mask": (b, 1, h, w),
            "masked_image_latents": (b, LATENT_CHANNELS, h, w),
            "timestep": (b,),
            "encoder_hidden_states": (b, cfg.cross_attention_dim, 1, self.tokens),
            "time_ids": (b, 6),
            "text_embeds": (b, self.text_embeds_dim or 0),
            "timestep_cond": (b, self.time_cond_proj_dim or 0),
        }
        return {name: shapes[name] for name in self.input_names}

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
                *extra: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.input_names[3:], extra))
        kwargs = {}
        if self.addition_time_embed:
            kwargs["added_cond_kwargs"] = {"text_embeds": named["text_embeds"], "time_ids": named["time_ids"]}
        if self.time_cond_proj_dim:
            kwargs["timestep_cond"] = named["timestep_cond"]
        if self.inpainting:
            sample = torch.cat([sample, named["mask"], named["masked_image_latents"]], dim=1)
        hidden = encoder_hidden_states.squeeze(2).transpose(1, 2)  # (B, D, 1, 77·k) → (B, 77·k, D)
        return self.unet(sample, timestep, hidden, return_dict=False, **kwargs)[0]

    def example_inputs(self, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        inputs = []
        for name, shape in self.input_shapes().items():
            if name == "timestep":
                inputs.append(torch.randint(0, 1000, shape, generator=generator).to(torch.float32))
            elif name == "time_ids":
                h, w = self.latent_hw
                size = [h * 8, w * 8, 0, 0, h * 8, w * 8]
                inputs.append(torch.tensor([size] * self.batch_size, dtype=torch.float32))
            else:
                inputs.append(torch.randn(shape, generator=generator))
        return tuple(inputs)


class VAEDecoderWrapper(nn.Module):
    """``z`` (1, 4, h, w), unscaled (latents / scaling_factor) → ``image`` (1, 3, H, W) in [-1, 1].

    Serves AutoencoderKL and AutoencoderTiny alike: the tiny one has no ``post_quant_conv``."""

    def __init__(self, vae: nn.Module, latent_hw: tuple[int, int]):
        super().__init__()
        post_quant_conv = getattr(vae, "post_quant_conv", None)
        self.post_quant_conv = post_quant_conv if post_quant_conv is not None else nn.Identity()
        self.decoder = vae.decoder
        self.latent_channels = vae.config.latent_channels
        self.latent_hw = latent_hw
        self.input_names = ("z",)
        self.output_names = ("image",)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(z))

    def example_inputs(self, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return (torch.randn((1, self.latent_channels, *self.latent_hw), generator=generator),)


class VAEEncoderWrapper(nn.Module):
    """``x`` (1, 3, H, W) in [-1, 1] → ``latent`` (1, 2·4, h, w): the posterior's mean and log-variance."""

    def __init__(self, vae: nn.Module, image_hw: tuple[int, int]):
        super().__init__()
        self.encoder = vae.encoder
        self.quant_conv = vae.quant_conv if vae.quant_conv is not None else nn.Identity()
        self.image_hw = image_hw
        self.input_names = ("x",)
        self.output_names = ("latent",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(x))

    def example_inputs(self, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return (torch.rand((1, 3, *self.image_hw), generator=generator) * 2 - 1,)


class TinyDecoderWrapper(VAEDecoderWrapper):
    """AutoencoderTiny (TAESD): ``z`` (1, 4, h, w), latents / its scaling_factor (1.0) → ``image`` (1, 3, H, W)
    in [-1, 1]."""
