"""THE LCM loop, written once for every backend — and for LCM's successors, as presets of the same loop.

Reads like diffusers' ``LatentConsistencyModelPipeline.__call__`` (and, for plain UNets, the
Stable Diffusion / SDXL pipelines with ``LCMScheduler``), so that for the same components,
prompt, seeds, steps, guidance and size it makes the same latents:

1. check inputs            2. choose the guidance mode     3. encode prompts (cached by the caller; with CFG
   the shorter of prompt and negative prompt is padded with empty-prompt chunks: ``prompt_encoding.py``)
4. prepare timesteps       5. prepare latents (one CPU generator per image: seed + i)
   image-to-image (``LatentConsistencyModelImg2ImgPipeline``): ``strength`` cuts the 50-point distillation
   schedule to ``int(50·strength)`` points and ``steps`` are spread over them (steps = denoiser calls at
   any strength; too few points is an error, see ``core.request.check_steps_for_strength``); the latents
   are the starting image's VAE sample (drawn with generator i), noised to the first timestep with noise
   drawn from the same generators — the order diffusers draws in, so the pixels match.
6. guidance embedding / SDXL size conditioning
7. per step: one denoiser call (with structure controls: their residuals first, ``engine/controls.py``) →
   scheduler step → callback → cancel check
The caller decodes the returned ``denoised`` latents (the last step's sample).

The scheduler is the request's sampler preset's (``core.presets``: LCM, TCD with its ``eta``, Hyper-SD, DDIM /
Euler / Euler a with trailing spacing), built from the model's scheduler config with the preset's overrides;
for LCM the loop is ``LatentConsistencyModelPipeline``'s, for the others ``StableDiffusion(XL)Pipeline``'s
with that scheduler (``scale_model_input`` per step, ``init_noise_sigma``, the step's ``eta``), and
image-to-image follows ``StableDiffusionImg2ImgPipeline`` (``core.presets.StrengthRule``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.errors import GenerationCancelled, InvalidRequestError, ModelFormatError, PromptTooLongError
from ..core.presets import (
    SamplerPreset,
    StrengthRule,
    check_eta,
    preset_for_scheduler,
    preset_named,
    schedule_length,
)
from ..core.request import GenerationRequest, StepProgress, check_steps_for_strength
from .components import ImageEncoder, ModelComponents, PromptEmbedding
from .controls import RequestControls
from .finite import check_finite
from .inpaint import LATENT_CHANNELS, LatentMask
from .prompt_encoding import chunk_count, pad_chunks

NON_FINITE_FIX = ("lower the prompt's weights or the guidance, leave out the styles, or run in float32 (fp16 can "
                  "overflow)")


def guidance_embedding(w: torch.Tensor, embedding_dim: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sinusoidal embedding of the guidance weight ``w`` (B,) → (B, embedding_dim).

    As in the LCM paper and diffusers' pipelines: w is scaled by 1000, frequencies step by
    log(10000)/(half−1), and the halves are [sin, cos] (not sin twice — a known porting bug).
    """
    if w.ndim != 1:
        raise ValueError(f"w must be 1-D, got shape {tuple(w.shape)}")
    w = w * 1000.0
    half = embedding_dim // 2
    freq = torch.exp(torch.arange(half, dtype=dtype) * -(torch.log(torch.tensor(10000.0)) / (half - 1)))
    args = w.to(dtype)[:, None] * freq[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if embedding_dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


@dataclass
class SamplerOutput:
    denoised: torch.Tensor  # (B, 4, h, w) on the denoiser's device: the final latents, to decode
    denoiser_calls: int
    step_seconds: list[float]
    encode_seconds: float
    negative_prompt_ignored: bool
    encoder_cache_hit: bool


def uses_cfg(components: ModelComponents, guidance_scale: float) -> bool:
    """Classifier-free guidance (a two-row batch) only for plain UNets with guidance > 1."""
    return components.denoiser.info.time_cond_proj_dim is None and guidance_scale > 1.0


def sample(
    components: ModelComponents,
    request: GenerationRequest,
    encode: Callable[[str], tuple[PromptEmbedding, bool]],
    on_step: Callable[[StepProgress], None] | None = None,
    cancel: threading.Event | None = None,
    init_image: torch.Tensor | None = None,
    image_encoder: ImageEncoder | None = None,
    inpaint: LatentMask | None = None,
    controls: RequestControls | None = None,
) -> SamplerOutput:
    """Run the LCM loop for a resolved request; ``encode(prompt) -> (embedding, cache_hit)``.

    Image-to-image: ``init_image`` is the fitted starting image (1, 3, H, W) in [-1, 1] (H, W: the request's
    size) and ``image_encoder`` turns it into latents (the components' VAE encoder, or a tiny one).
    Inpainting: ``inpaint`` (``engine/inpaint.py``) makes the first latents, the UNet's input and the blend after
    each step.  ``controls``: the request's prepared structure controls (``engine.controls.prepare_controls``).
    """
    from diffusers.utils.torch_utils import randn_tensor

    den = components.denoiser
    info = den.info
    device, dtype = den.device, den.dtype

    # 1. check inputs
    if not request.is_resolved:
        raise ValueError("sample() needs a resolved request (see GenerationRequest.resolved)")
    scale = components.decoder.scale_factor
    h, w = request.height // scale, request.width // scale
    for name, side in (("width", request.width), ("height", request.height)):
        if side % scale:
            raise InvalidRequestError(name, side, f"a multiple of {scale} for this model")
    batch = request.batch_size
    if info.fixed_shape is not None:
        fixed_b, _, fixed_h, fixed_w = info.fixed_shape
        if (fixed_h, fixed_w) != (h, w):
            raise InvalidRequestError(
                "size", f"{request.width}x{request.height}",
                f"{fixed_w * scale}x{fixed_h * scale}, the size this Core ML model was converted for "
                "(convert it again with --size to use another)",
            )

    if init_image is not None or inpaint is not None:
        if image_encoder is None:
            raise ModelFormatError(f"{components.name} was converted without an image encoder; convert it again "
                                   "(with its vae_encoder) to start from an image.")
        if init_image is not None and tuple(init_image.shape[-2:]) != (request.height, request.width):
            raise ValueError(f"init_image is {tuple(init_image.shape)}, not fitted to {request.width}x{request.height}")
        preset = request_preset(components, request)
        if preset.strength_rule is StrengthRule.SCHEDULE or preset.capped:  # LCM, TCD: the distillation schedule
            check_steps_for_strength(request.steps, request.strength, _original_steps(components))

    # 2. guidance mode
    cfg = uses_cfg(components, request.guidance_scale)
    negative_ignored = bool(request.negative_prompt.strip()) and not cfg

    # 3. encode prompts
    _check_cancel(cancel)
    started = time.perf_counter()
    positive, cache_hit = encode(request.prompt)
    cond = positive.hidden_states.repeat(batch, 1, 1)  # (B, 77·chunks, D)
    pooled = positive.pooled.repeat(batch, 1) if positive.pooled is not None else None
    if cfg:
        if components.family == "sdxl" and not request.negative_prompt and components.force_zeros_for_empty_prompt:
            negative = PromptEmbedding(
                torch.zeros_like(positive.hidden_states),
                None if positive.pooled is None else torch.zeros_like(positive.pooled),
            )
        else:
            try:
                negative, _ = encode(request.negative_prompt)
            except PromptTooLongError as exc:  # the same limit, said of the negative prompt
                raise PromptTooLongError("negative prompt", exc.tokens, exc.chunks, exc.max_chunks) from None
        uncond = negative.hidden_states.repeat(batch, 1, 1)
        chunks = max(chunk_count(positive), chunk_count(negative))
        if chunk_count(positive) != chunk_count(negative):  # one CFG batch: the shorter gets empty-prompt chunks
            empty = encode("")[0].hidden_states
            cond, uncond = pad_chunks(cond, chunks, empty), pad_chunks(uncond, chunks, empty)
        cond = torch.cat([uncond, cond])
        if pooled is not None and negative.pooled is not None:
            pooled = torch.cat([negative.pooled.repeat(batch, 1), pooled])
    encode_seconds = time.perf_counter() - started

    # 4. timesteps: the preset's scheduler (core.presets), from the model's scheduler config
    preset = request_preset(components, request)
    scheduler = build_scheduler(preset, components.scheduler_config)
    step_kwargs: dict = {"generator": generators_for(request)}
    if preset.takes_eta:
        step_kwargs["eta"] = check_eta(request.eta, preset)
    timesteps = _set_timesteps(scheduler, preset, request, device, img2img=init_image is not None)

    # 5. latents: one CPU generator per image, so image i is reproducible alone from seed + i
    generators = step_kwargs["generator"]
    if inpaint is not None:
        started = time.perf_counter()
        latents = inpaint.start(scheduler, image_encoder, generators, (batch, LATENT_CHANNELS, h, w), device, dtype,
                                request.strength)
        encode_seconds += time.perf_counter() - started
    elif init_image is None:
        latents = randn_tensor((batch, info.in_channels, h, w), generator=generators, device=device, dtype=dtype)
        latents = latents * scheduler.init_noise_sigma
    else:
        started = time.perf_counter()
        clean = image_encoder.encode(init_image, generators).to(device, dtype)  # (B, 4, h, w), scaled
        noise = randn_tensor(tuple(clean.shape), generator=generators, device=device, dtype=dtype)
        latents = scheduler.add_noise(clean, noise, timesteps[:1].repeat(batch))
        encode_seconds += time.perf_counter() - started

    # 6. guidance embedding (guidance-embedding LCMs) and SDXL size conditioning
    timestep_cond = None
    if info.time_cond_proj_dim is not None:
        w_batch = torch.tensor(request.guidance_scale - 1).repeat(batch)
        timestep_cond = guidance_embedding(w_batch, info.time_cond_proj_dim).to(device, dtype=dtype)
    time_ids = None
    if info.addition_time_embed:
        if pooled is None:
            raise InvalidRequestError("model", components.name, "an SDXL-class model with a pooled text encoder")
        size = [request.height, request.width]
        time_ids = torch.tensor([size + [0, 0] + size], dtype=cond.dtype, device=device).repeat(cond.shape[0], 1)

    # 7. denoising loop
    calls, step_seconds = 0, []
    loop_start = time.perf_counter()
    for i, t in enumerate(timesteps):
        _check_cancel(cancel)
        step_start = time.perf_counter()
        model_input = scheduler.scale_model_input(torch.cat([latents] * 2) if cfg else latents, t)
        residuals = None
        if controls is not None:  # on the 4-channel latents, as diffusers' ControlNet (inpaint) pipelines do
            added = {"text_embeds": pooled, "time_ids": time_ids} if info.addition_time_embed else None
            residuals = controls.residuals(i, len(timesteps), model_input, t, cond, added)
        if inpaint is not None:
            model_input = inpaint.model_input(model_input)
        noise_pred = den(
            model_input, t, cond,
            timestep_cond=timestep_cond,
            text_embeds=pooled if info.addition_time_embed else None,
            time_ids=time_ids,
            **({"residuals": residuals} if residuals is not None else {}),
        )
        calls += 1
        if cfg:
            uncond, text = noise_pred.chunk(2)
            noise_pred = uncond + request.guidance_scale * (text - uncond)
        out = scheduler.step(noise_pred, t, latents, **step_kwargs)
        latents, estimate = out.prev_sample, _estimate(out)
        if inpaint is not None:
            latents, estimate = inpaint.after_step(scheduler, i, latents, estimate)
        check_finite(latents, f"step {i + 1} of {len(timesteps)}", NON_FINITE_FIX)
        step_seconds.append(time.perf_counter() - step_start)
        if on_step is not None:  # a preview: the step's clean-image estimate; the last step: the final latents
            last = i == len(timesteps) - 1
            on_step(StepProgress(i + 1, len(timesteps), time.perf_counter() - loop_start,
                                 latents if last else estimate))
    _check_cancel(cancel)
    return SamplerOutput(latents, calls, step_seconds, encode_seconds, negative_ignored, cache_hit)


def request_preset(components: ModelComponents, request: GenerationRequest) -> SamplerPreset:
    """The request's sampler, else the one the components' scheduler config names (``core.presets``)."""
    if request.sampler is not None:
        return preset_named(request.sampler)
    return preset_for_scheduler(components.scheduler_config)


def build_scheduler(preset: SamplerPreset, config: dict):
    """The preset's diffusers scheduler from a model's config (the class comes from our table, never the folder)."""
    import diffusers

    return getattr(diffusers, preset.scheduler).from_config(config, **preset.config_overrides)


def generators_for(request: GenerationRequest) -> list[torch.Generator]:
    return [torch.Generator("cpu").manual_seed(s) for s in request.seeds]


def _set_timesteps(scheduler, preset: SamplerPreset, request: GenerationRequest, device, *, img2img: bool):
    """The timesteps the loop runs (``steps`` of them).  Image-to-image: SCHEDULE presets cut the distillation
    schedule by strength (``set_timesteps(strength=)``); TRUNCATE presets run the last ``steps`` points of a
    schedule of ``schedule_length`` points, as diffusers' ``StableDiffusionImg2ImgPipeline.get_timesteps``."""
    if not img2img:
        scheduler.set_timesteps(request.steps, device=device)
        return scheduler.timesteps
    if preset.strength_rule is StrengthRule.SCHEDULE:
        scheduler.set_timesteps(request.steps, device=device, strength=request.strength)
        return scheduler.timesteps
    n = schedule_length(preset, request.steps, request.strength, int(scheduler.config.get("original_inference_steps")
                                                                     or 50))
    scheduler.set_timesteps(n, device=device)
    start = (n - request.steps) * scheduler.order
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start)
    return scheduler.timesteps[start:]


def _estimate(out) -> torch.Tensor:
    """A scheduler step's clean-image estimate (LCM: ``denoised``; DDIM/Euler: x0; TCD: the noised x_s)."""
    for name in ("denoised", "pred_original_sample", "pred_noised_sample"):
        value = getattr(out, name, None)
        if value is not None:
            return value
    return out.prev_sample


def _original_steps(components: ModelComponents) -> int:
    """The length of the distillation schedule the scheduler cuts (``original_inference_steps``, 50 by default)."""
    from diffusers import LCMScheduler

    return int(LCMScheduler.from_config(components.scheduler_config).config.original_inference_steps)


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise GenerationCancelled()
