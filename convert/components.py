"""Which components a conversion produces, each as a job: wrapper, capture route, eager reference.

The eager reference is the diffusers/transformers module called the ordinary way (diffusers
layout, its own attention processor); the wrapper is what gets captured (Apple layout, the
requested attention).  ``validate.check_traced_vs_eager`` compares the two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from convert.attention import set_attention
from convert.options import ConvertOptions
from convert.source import SourceModel
from convert.wrappers import (
    TextEncoderWrapper,
    TinyDecoderWrapper,
    UnetWrapper,
    VAEDecoderWrapper,
    VAEEncoderWrapper,
)
from lcm_desktop.core.manifest import TEXT_ENCODER, TEXT_ENCODER_2, TINY_DECODER, UNET, VAE_DECODER, VAE_ENCODER


@dataclass
class Job:
    name: str  # Apple's component name
    wrapper: torch.nn.Module
    route: str  # "export" | "trace"
    eager: Callable[[tuple[torch.Tensor, ...]], tuple[torch.Tensor, ...]]
    attention_module: torch.nn.Module | None = None  # gets the requested attention before capture
    precision: str = "float16"


def image_size(source: SourceModel, options: ConvertOptions) -> tuple[int, int]:
    """(width, height) the latent shapes are fixed for."""
    return options.size or source.native_size


def plan_jobs(pipe, source: SourceModel, options: ConvertOptions, taesd=None) -> list[Job]:
    width, height = image_size(source, options)
    factor = source.vae_scale_factor
    latent_hw = (height // factor, width // factor)
    jobs: list[Job] = []
    if "text_encoder" in options.components:
        hidden_layer = -2 if source.family == "sdxl" else None
        for name, module in (
            (TEXT_ENCODER, pipe.text_encoder),
            (TEXT_ENCODER_2, getattr(pipe, "text_encoder_2", None)),
        ):
            if module is not None:
                jobs.append(
                    Job(
                        name,
                        TextEncoderWrapper(module, hidden_layer),
                        "trace",
                        _text_encoder_eager(module, hidden_layer),
                    )
                )
    if "unet" in options.components:
        cfg = pipe.unet.config
        text_embeds_dim = None
        if cfg.addition_embed_type == "text_time":
            text_embeds_dim = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
        wrapper = UnetWrapper(
            pipe.unet, batch_size=options.batch_size, latent_hw=latent_hw, text_embeds_dim=text_embeds_dim,
            prompt_chunks=options.max_prompt_chunks,
        )
        jobs.append(Job(UNET, wrapper, "export", _unet_eager(pipe.unet, wrapper.input_names), pipe.unet))
    # SDXL's VAE overflows in fp16 (its config says force_upcast, as diffusers' pipelines read it): keep fp32.
    vae_precision = "float32" if source.family == "sdxl" and source.vae_config.get("force_upcast", False) else "float16"
    if "vae_decoder" in options.components:
        vae = pipe.vae
        jobs.append(Job(VAE_DECODER, VAEDecoderWrapper(vae, latent_hw), "export",
                        lambda inputs: (vae.decode(inputs[0], return_dict=False)[0],), precision=vae_precision))
    if "vae_encoder" in options.components:
        vae = pipe.vae
        jobs.append(Job(VAE_ENCODER, VAEEncoderWrapper(vae, (height, width)), "export",
                        lambda inputs: (vae.encode(inputs[0]).latent_dist.parameters,), precision=vae_precision))
    if taesd is not None:
        jobs.append(Job(TINY_DECODER, TinyDecoderWrapper(taesd, latent_hw), "export",
                        lambda inputs: (taesd.decode(inputs[0], return_dict=False)[0],)))
    return jobs


def _text_encoder_eager(module, hidden_layer):
    def run(inputs):
        out = module(inputs[0].long(), output_hidden_states=True)
        pooled = out.text_embeds if "text_embeds" in out else out.pooler_output
        hidden = out.last_hidden_state if hidden_layer is None else out.hidden_states[hidden_layer]
        return hidden, pooled

    return run


def _unet_eager(unet, input_names):
    def run(inputs):
        named = dict(zip(input_names, inputs))
        kwargs = {}
        if "timestep_cond" in named:
            kwargs["timestep_cond"] = named["timestep_cond"]
        if "text_embeds" in named:
            kwargs["added_cond_kwargs"] = {"text_embeds": named["text_embeds"], "time_ids": named["time_ids"]}
        hidden = named["encoder_hidden_states"].squeeze(2).transpose(1, 2)  # diffusers' (B, 77·k, D)
        sample = named["sample"]
        if "mask" in named:  # an inpainting UNet: its three inputs on channels, as diffusers' inpaint pipeline
            sample = torch.cat([sample, named["mask"], named["masked_image_latents"]], dim=1)
        return (unet(sample, named["timestep"], hidden, **kwargs).sample,)

    return run


def install_attention(jobs: list[Job], attention: str) -> None:
    for job in jobs:
        if job.attention_module is not None:
            set_attention(job.attention_module, attention)


def build_wrappers(options: ConvertOptions) -> dict[str, torch.nn.Module]:
    """The wrappers a conversion with ``options`` captures, attention installed: for tests and tools that
    need the same functions in PyTorch (e.g. a stand-in for Core ML's predict off a Mac)."""
    from convert.lora import fuse_lcm_lora
    from convert.source import inspect_source, load_pipeline, load_tiny_decoder

    source = inspect_source(options.source, options.components)
    pipe = load_pipeline(source, options.components)
    if options.lcm_lora:
        fuse_lcm_lora(pipe, options.lcm_lora)
    taesd = load_tiny_decoder(options.tiny_decoder) if options.tiny_decoder else None
    jobs = plan_jobs(pipe, source, options, taesd)
    install_attention(jobs, options.attention)
    return {job.name: job.wrapper.eval() for job in jobs}
