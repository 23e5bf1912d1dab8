"""Engine: load a model once, keep it warm, and turn requests into images.

    engine = Engine(TorchLoader(model_folder))   # nothing loaded yet (a bare folder means the same)
    result = engine.generate(GenerationRequest("a red circle"), on_step=print)

The prompt-embedding cache means regenerating with the same prompt never re-runs the text
encoder (live mode edits the seed or steps far more often than the prompt); it is keyed on the text
encoders' style-LoRA state too, so changing a style's weight never reuses a stale embedding.  The model's
description (``core.model_info``: family, defaults) is read once, at load.

Styles: a request names them (``request.styles``: its loras and the prompt's ``<lora:…>`` tags); the engine
asks ``styles(name) -> Path`` (the front end passes ``models.styles.StyleStore().path_of``) and the components'
``StyleAdapters`` apply them without reloading the model (``engine/styles.py``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..core.errors import GenerationCancelled, InvalidRequestError
from ..core.model_folder import inspect_model_folder, model_hash
from ..core.model_info import (
    DEFAULT_LCM_GUIDANCE,
    DEFAULT_PLAIN_GUIDANCE,
    ModelDefaults,
    ModelInfo,
    ModelKind,
    describe_model,
)
from ..core.presets import SamplerPreset, preset_for_scheduler, resolve_sampler
from ..core.request import GenerationRequest, GenerationResult, StepProgress, Timings
from .components import ModelComponents, PromptEmbedding, StyleState
from .finite import check_finite
from .loaders import Loader, TorchLoader
from .sampler import NON_FINITE_FIX, sample

StyleResolver = Callable[[str], Path]  # a style's name → its file (models.styles.StyleStore.path_of)
ControlResolver = Callable[[str | Path], Path]  # a control model's name or folder → its folder (models.resolve)


class Engine:
    def __init__(self, loader: Loader | Path | str, *, cache_size: int = 32, styles: StyleResolver | None = None,
                 controls: ControlResolver | None = None):
        """``loader``: a ``TorchLoader``/``CoreMLLoader`` (or any callable returning components); a folder
        path means ``TorchLoader(folder)``.  ``styles``: how a request's style names become files;
        ``controls``: how its control models' names become folders (default: folders only)."""
        if isinstance(loader, (str, Path)):
            loader = TorchLoader(Path(loader))
        self._loader = loader
        self.model_path: Path | None = getattr(loader, "folder", None)
        self._components: ModelComponents | None = None
        self._info: ModelInfo | None = None
        self._cache: OrderedDict[tuple, PromptEmbedding] = OrderedDict()
        self._styles = styles
        self._controls = controls
        self._text_state: tuple = ()  # the text encoders' style state the cache keys on
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.load_seconds = 0.0
        self.model_hash: str | None = None  # A1111-style "Model hash" of a diffusers model, computed at load

    @classmethod
    def from_components(cls, components: ModelComponents, *, cache_size: int = 32,
                        styles: StyleResolver | None = None, controls: ControlResolver | None = None) -> Engine:
        """An engine over modules built elsewhere (tests, benchmarks sharing modules with diffusers)."""
        return cls(lambda: components, cache_size=cache_size, styles=styles, controls=controls)

    # -- loading ---------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._components is not None

    def load(self) -> ModelComponents:
        """Load the model if it is not loaded yet (thread-safe); return its components."""
        with self._lock:
            if self._components is None:
                started = time.perf_counter()
                components = self._loader()
                self._info = describe_model(self.model_path) if self.model_path is not None else None
                self.model_hash = _weights_hash(self._info)
                self._components = components
                self.load_seconds = time.perf_counter() - started
            return self._components

    @property
    def components(self) -> ModelComponents:
        return self.load()

    # -- defaults ----------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo | None:
        """What the loaded model is (``None`` for components built elsewhere)."""
        self.load()
        return self._info

    @property
    def defaults(self) -> ModelDefaults:
        """The model's recommended steps, guidance and size (read once, at load)."""
        if self.info is not None:
            return self.info.defaults
        comps = self.components
        width, height = comps.native_size
        guided = comps.denoiser.info.time_cond_proj_dim is not None
        return ModelDefaults(4, DEFAULT_LCM_GUIDANCE if guided else DEFAULT_PLAIN_GUIDANCE, width, height)

    def resolve(self, request: GenerationRequest) -> GenerationRequest:
        """The request with every default filled in, its sampler and eta included (checked against the model)."""
        d = self.defaults
        return resolve_sampler(request.resolved(width=d.width, height=d.height, guidance_scale=d.guidance_scale),
                               self.preset, self.components.name)

    @property
    def preset(self) -> SamplerPreset:
        """The sampler the model was made for (``core.presets``; its folder's, else its scheduler config's)."""
        info = self.info
        return info.preset if info is not None else preset_for_scheduler(self.components.scheduler_config)

    # -- prompt cache ------------------------------------------------------------------------
    def encode(self, prompt: str) -> tuple[PromptEmbedding, bool]:
        """Encoded prompt from the LRU cache (keyed on the text encoders' style state too), or freshly encoded."""
        key = (self._text_state, prompt)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key], True
        embedding = self.components.text_encoder.encode(prompt)
        self._cache[key] = embedding
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return embedding, False

    # -- generation --------------------------------------------------------------------------
    def generate(
        self,
        request: GenerationRequest,
        on_step: Callable[[StepProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        started = time.perf_counter()
        was_loaded = self.loaded
        comps = self.load()
        load_seconds = 0.0 if was_loaded else self.load_seconds
        request, dropped = self._fit_prompts(comps, self.resolve(request))
        styles = self.apply_styles(request)
        decoder = comps.decoder
        if request.tiny_decoder:
            if comps.tiny_decoder is None:
                raise InvalidRequestError("tiny_decoder", True, "used only with a model that has a tiny decoder "
                                          "(pass --tiny-decoder with an AutoencoderTiny folder)")
            decoder = comps.tiny_decoder
        image_encoder = comps.image_encoder
        if request.tiny_decoder and comps.tiny_image_encoder is not None:
            image_encoder = comps.tiny_image_encoder  # the live path: the tiny autoencoder both ways
        request, init_image, inpaint, finish = _start(request, comps.denoiser.info.in_channels)
        out = sample(comps, request, self.encode, on_step=on_step, cancel=cancel, init_image=init_image,
                     image_encoder=image_encoder, inpaint=inpaint, controls=self.prepare_controls(request))
        decode_start = time.perf_counter()
        decoded = decoder.decode(out.denoised)
        check_finite(decoded, "the decoder", NON_FINITE_FIX)
        images = finish(to_pil(decoded))
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled()
        decode_seconds = time.perf_counter() - decode_start
        return GenerationResult(
            request=request,
            images=images,
            seeds=request.seeds,
            model_name=comps.name,
            backend=comps.backend,
            timings=Timings(load=load_seconds, encode=out.encode_seconds, steps=tuple(out.step_seconds),
                            decode=decode_seconds, total=time.perf_counter() - started),
            denoiser_calls=out.denoiser_calls,
            negative_prompt_ignored=out.negative_prompt_ignored,
            encoder_cache_hit=out.encoder_cache_hit,
            dropped_words=dropped,
            lora_hashes=styles.hashes,
        )

    def apply_styles(self, request: GenerationRequest) -> StyleState:
        """Make the request's styles active (none: the bare model); the prompt cache follows the text encoders."""
        comps = self.load()
        loras = request.styles  # the request's and the prompt's <lora:…> tags
        if comps.styles is None:
            if loras:
                raise InvalidRequestError("loras", ", ".join(lora.name for lora in loras),
                                          f"left out for {comps.name}: its components take no styles")
            state = StyleState()
        else:
            state = comps.styles.apply(loras, self._resolve_style)
        self._text_state = state.text_key
        return state

    def prepare_controls(self, request: GenerationRequest):
        """The resolved request's structure controls, ready for the loop (``None``: it has none)."""
        if not request.controls:
            return None
        comps = self.load()
        if comps.controls is None:
            raise InvalidRequestError("controls", ", ".join(c.model_label for c in request.controls),
                                      f"left out for {comps.name}: structure controls run on the PyTorch backend only")
        from .controls import prepare_controls

        return prepare_controls(comps.controls, request.controls, request.width, request.height, self._resolve_control)

    def _resolve_control(self, model: str | Path) -> Path:
        if self._controls is not None:
            return self._controls(model)
        return Path(model)

    def _resolve_style(self, name: str) -> Path:
        if self._styles is None:
            raise InvalidRequestError("loras", name, "resolved to a file: give the Engine styles=StyleStore().path_of")
        return self._styles(name)

    @staticmethod
    def _fit_prompts(comps: ModelComponents, request: GenerationRequest) -> tuple[GenerationRequest, tuple[int, int]]:
        """The request as it will really run: prompts cut to what the text encoder takes; words dropped from each."""
        prompt = comps.text_encoder.fit(request.prompt)
        negative = comps.text_encoder.fit(request.negative_prompt) if request.negative_prompt else None
        if not prompt.truncated and (negative is None or not negative.truncated):
            return request, (0, 0)
        fitted = replace(request, prompt=prompt.used, negative_prompt=negative.used if negative else "")
        return fitted, (prompt.dropped_words, negative.dropped_words if negative else 0)

    def preview(self, denoised: torch.Tensor) -> list[Any]:
        """Cheap images of the denoised latents of a step: the tiny decoder, else the VAE at half size."""
        comps = self.components
        if comps.tiny_decoder is not None:
            return to_pil(comps.tiny_decoder.decode(denoised))
        latents = denoised
        if min(latents.shape[-2:]) >= 16:
            latents = torch.nn.functional.avg_pool2d(latents.float(), 2).to(denoised.dtype)
        return to_pil(comps.decoder.decode(latents))


def _start(request: GenerationRequest, in_channels: int):
    """(request as generated, the starting image tensor or None, the sampler's LatentMask or None, how the
    decoded pictures are finished): image-to-image fits the picture; a mask goes through ``engine/inpaint.py``."""
    from .inpaint import INPAINT_CHANNELS, LatentMask, mask_tensor, plan_inpaint

    init_image, inpaint = None, None
    finish: Callable[[list[Any]], list[Any]] = list
    if request.inpaint is not None:
        plan = plan_inpaint(request, in_channels)
        request, finish, init_image = plan.request, plan.finish, image_tensor(plan.image)
        if plan.mask is not None:
            inpaint = LatentMask(init_image, mask_tensor(plan.mask), in_channels)
    elif request.init_image is not None:
        from ..core.init_image import load_init_image

        init_image = image_tensor(load_init_image(request.init_image, request.width, request.height))
    if inpaint is None and in_channels == INPAINT_CHANNELS:  # an inpainting UNet asked for a whole picture
        inpaint = LatentMask.everything(init_image, request.height, request.width)
    return request, init_image, inpaint, finish


def _weights_hash(info: ModelInfo | None) -> str | None:
    if info is None or info.kind is not ModelKind.DIFFUSERS:
        return None
    return model_hash(inspect_model_folder(info.path))


def image_tensor(image: Any) -> torch.Tensor:
    """An RGB PIL image → (1, 3, H, W) float32 in [-1, 1], as diffusers' image processor makes it."""
    import numpy as np

    array = np.asarray(image.convert("RGB")).astype(np.float32) / 255.0
    # the layout diffusers' VaeImageProcessor gives: an NCHW view of HWC memory (channels-last strides).  The
    # VAE encoder's convolution takes another kernel path on each layout: in fp16 the latents differ by ~1e-3
    # (issue 25 item 9); ``TorchImageEncoder`` makes it contiguous where diffusers' batch path does.
    return torch.from_numpy(array[None].transpose(0, 3, 1, 2)) * 2.0 - 1.0


def to_pil(images: torch.Tensor) -> list[Any]:
    """(B, 3, H, W) in [-1, 1] → PIL images, rounded as diffusers' image processor does."""
    from PIL import Image

    array = (images / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().numpy()
    return [Image.fromarray((a * 255).round().astype("uint8")) for a in array]
