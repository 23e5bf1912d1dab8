"""Inpainting and outpainting on the one LCM loop: the plan (pictures) and the latent mask (the sampler's hook).

``plan_inpaint`` turns a request with a mask (``core.mask.Inpaint``) into what the loop generates — the fitted
picture, the fitted blurred mask, the generation's size (the whole picture, the crop around the mask, or the
outpainted canvas) — and ``finish``, which puts the model's pictures back: pasted into the crop's box, then the
original overlaid outside the mask (``core.mask.apply_overlay``) unless the request keeps the raw output.

``LatentMask`` is what the sampler calls (three small hooks: ``start``, ``model_input``, ``after_step``), written
after diffusers' ``StableDiffusionInpaintPipeline`` so that the same components, seeds and mask make the same
latents (strength 1; below 1 the LCM image-to-image schedule, as ``engine.sampler`` explains):

* **4-channel UNet** (any LCM): after every scheduler step the kept region is put back — the starting image's
  latents noised to the next timestep with the first step's noise (clean at the last step) — and the
  denoised latents are blended the same way, so previews and the final picture keep the original outside.
* **9-channel inpainting UNet** (with or without an LCM-LoRA): the UNet's input is the latents, the latent mask
  and the masked picture's latents, concatenated on channels.  The model's kind decides (``DenoiserInfo``'s
  ``in_channels``); a 9-channel UNet asked for text-to-image or plain image-to-image gets an all-white mask
  (the whole picture repainted; the masked picture grey), as diffusers would with an all-white mask.

Random draws per image generator, in diffusers' order: the starting image's VAE sample (4-channel, or strength
below 1), the noise, the masked picture's VAE sample (a 4-channel UNet does not need it: the same draw is made
and dropped, so the scheduler's later noise matches).  Each image of a batch draws from its own generator
(image i is the batch-of-one image of seed + i; diffusers samples a batch's VAE latents from the first generator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..core.errors import InvalidRequestError
from ..core.mask import (
    INPAINT_CHANNELS,
    LATENT_CHANNELS,
    InpaintArea,
    MaskState,
    apply_overlay,
    crop_box,
    load_mask,
    load_picture,
    mask_state,
    outpaint_canvas,
)
from ..core.request import GenerationRequest
from .components import ImageEncoder


@dataclass
class InpaintPlan:
    """What one masked request generates, and how its pictures are put back."""

    request: GenerationRequest  # as generated: width × height is the picture's, the crop's or the canvas's size
    image: Any  # PIL RGB, width × height: the generation's starting picture
    mask: Any  # PIL L, width × height, blurred; None → all white on a 4-channel model: plain image-to-image
    finish: Callable[[list[Any]], list[Any]]


def plan_inpaint(request: GenerationRequest, in_channels: int) -> InpaintPlan:
    """The plan for a resolved request carrying ``inpaint`` (see the module docstring and ``core.mask``)."""
    from PIL import Image

    from ..core.init_image import load_init_image

    spec = request.inpaint
    width, height = request.width, request.height
    if spec.outpaint is not None:
        picture, border = outpaint_canvas(load_picture(request.init_image), spec.outpaint, request.seed)
        if spec.mask is not None:  # the user's mask, fitted to the picture inside the canvas, repaints there too
            inner = load_mask(spec.mask, picture.width - spec.outpaint.left - spec.outpaint.right,
                              picture.height - spec.outpaint.top - spec.outpaint.bottom)
            border.paste(inner, (spec.outpaint.left, spec.outpaint.top))
        mask = _blurred(border, spec.blur)
        if spec.area is InpaintArea.WHOLE:
            width, height = picture.size
    elif spec.area is InpaintArea.MASKED:
        picture = load_picture(request.init_image)
        mask = load_mask(spec.mask, picture.width, picture.height, spec.blur)
    else:
        picture = load_init_image(request.init_image, width, height)
        mask = load_mask(spec.mask, width, height, spec.blur)
    state = mask_state(mask)
    request = replace(request, width=width, height=height)

    if spec.area is InpaintArea.WHOLE:  # the whole picture (or canvas) is generated
        def finish(images: list[Any]) -> list[Any]:
            if spec.keep_generated or state is MaskState.ALL_WHITE:
                return images
            return [apply_overlay(mask, picture, image) for image in images]

        return InpaintPlan(request, picture, _model_mask(mask, state, in_channels), finish)

    box = crop_box(mask, spec.padding, width, height)
    size = (box[2] - box[0], box[3] - box[1])
    crop = picture.crop(box).resize((width, height), Image.Resampling.LANCZOS)
    crop_mask = mask.crop(box).resize((width, height), Image.Resampling.LANCZOS)

    def paste_back(images: list[Any]) -> list[Any]:
        """Each picture scaled into the box; the overlay is made in the box alone (outside it the mask is 0, so
        the overlay of the whole picture would be the original there: the same pixels, less work)."""
        out = []
        for image in images:
            region = image.resize(size, Image.Resampling.LANCZOS)
            if not spec.keep_generated:
                region = apply_overlay(mask.crop(box), picture.crop(box), region)
            whole = picture.copy()
            whole.paste(region, box[:2])
            out.append(whole)
        return out

    crop_state = MaskState.ALL_WHITE if crop_mask.getextrema()[0] >= 128 else MaskState.PARTIAL
    return InpaintPlan(request, crop, _model_mask(crop_mask, crop_state, in_channels), paste_back)


def _blurred(mask: Any, blur: int) -> Any:
    from PIL import ImageFilter

    return mask.filter(ImageFilter.GaussianBlur(blur)) if blur else mask


def _model_mask(mask: Any, state: MaskState, in_channels: int) -> Any:
    """All white on a 4-channel model is plain image-to-image: no mask for the loop."""
    return None if state is MaskState.ALL_WHITE and in_channels != INPAINT_CHANNELS else mask


def mask_tensor(mask: Any) -> torch.Tensor:
    """A PIL ``L`` mask → (1, 1, H, W) float32 of 0 and 1 (binarized at 0.5, as diffusers' mask processor)."""
    import numpy as np

    array = np.asarray(mask.convert("L")).astype(np.float32) / 255.0
    return torch.from_numpy((array >= 0.5).astype(np.float32))[None, None]


class LatentMask:
    """The sampler's inpainting hooks for one request (see the module docstring).

    image: (1, 3, H, W) in [-1, 1], the fitted picture (zeros for text-to-image on an inpainting UNet);
    mask: (1, 1, H, W) of 0/1 (1 = repaint); in_channels: the UNet's (4 or 9).
    """

    def __init__(self, image: torch.Tensor, mask: torch.Tensor, in_channels: int):
        if in_channels not in (LATENT_CHANNELS, INPAINT_CHANNELS):
            raise InvalidRequestError("model", f"a UNet with {in_channels} input channels",
                                      "a UNet with 4 channels (any LCM) or 9 (an inpainting UNet) to inpaint")
        self.image, self.mask, self.in_channels = image, mask, in_channels
        self.blend = in_channels == LATENT_CHANNELS
        self.clean: torch.Tensor | None = None
        self.noise: torch.Tensor | None = None
        self.small_mask: torch.Tensor | None = None
        self.masked_latents: torch.Tensor | None = None

    @classmethod
    def everything(cls, image: torch.Tensor | None, height: int, width: int) -> LatentMask:
        """An inpainting UNet asked for a whole picture: an all-white mask (and a grey picture if none)."""
        if image is None:
            image = torch.zeros(1, 3, height, width)
        return cls(image, torch.ones(1, 1, height, width), INPAINT_CHANNELS)

    def start(self, scheduler, encoder: ImageEncoder, generators: list[torch.Generator],
              shape: tuple[int, int, int, int], device: torch.device, dtype: torch.dtype,
              strength: float) -> torch.Tensor:
        """The first latents (B, 4, h, w): pure noise at strength 1, else the picture noised to the first timestep."""
        from diffusers.utils.torch_utils import randn_tensor

        if self.blend or strength < 1.0:
            self.clean = encoder.encode(self.image, generators).to(device, dtype)
        noise = randn_tensor(shape, generator=generators, device=device, dtype=dtype)
        if strength < 1.0:
            latents = scheduler.add_noise(self.clean, noise, scheduler.timesteps[:1])
        else:
            latents = noise * scheduler.init_noise_sigma
        self.noise = noise
        self.small_mask = torch.nn.functional.interpolate(self.mask, size=shape[-2:]).to(device, dtype)
        if self.blend:  # the masked picture's VAE sample is drawn (and not needed): the generators stay in step
            for g in generators:
                torch.randn((1,) + tuple(shape[1:]), generator=g, dtype=self.clean.dtype)
        else:
            masked = self.image * (self.mask < 0.5)
            self.masked_latents = encoder.encode(masked, generators).to(device, dtype)
        return latents

    def model_input(self, sample: torch.Tensor) -> torch.Tensor:
        """The UNet's input: the latents, and for an inpainting UNet the mask and masked picture's latents."""
        if self.blend:
            return sample
        rows = sample.shape[0] // self.masked_latents.shape[0]  # 2 with classifier-free guidance
        mask = self.small_mask.expand(self.masked_latents.shape[0], -1, -1, -1)
        return torch.cat([sample, mask.repeat(rows, 1, 1, 1), self.masked_latents.repeat(rows, 1, 1, 1)], dim=1)

    def after_step(self, scheduler, i: int, latents: torch.Tensor,
                   denoised: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """4-channel: the kept region put back, noised to the next timestep (clean after the last step)."""
        if not self.blend:
            return latents, denoised
        timesteps = scheduler.timesteps
        kept = self.clean
        if i < len(timesteps) - 1:
            kept = scheduler.add_noise(self.clean, self.noise, timesteps[i + 1 : i + 2])
        m = self.small_mask
        return (1 - m) * kept + m * latents, (1 - m) * self.clean + m * denoised
