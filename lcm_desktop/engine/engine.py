"""Engine: load a model once, keep it warm, and turn requests into images.

    engine = Engine(model_folder)            # nothing loaded yet
    result = engine.generate(GenerationRequest("a red circle"), on_step=print)

The prompt-embedding cache means regenerating with the same prompt never re-runs the text
encoder (live mode edits the seed or steps far more often than the prompt).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import replace
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..core.errors import GenerationCancelled, InvalidRequestError
from ..core.model_folder import DEFAULT_LCM_GUIDANCE, DEFAULT_PLAIN_GUIDANCE, recommended_settings
from ..core.request import GenerationRequest, GenerationResult, StepProgress
from .components import ModelComponents, PromptEmbedding
from .sampler import sample



class Engine:
    def __init__(
        self,
        model: Path | str | None = None,
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        tiny_decoder: Path | str | None = None,
        lora: Path | str | None = None,
        backend: str = "torch",
        compute_units: str = "ALL",
        cache_dir: Path | str | None = None,
        components: ModelComponents | None = None,
        loader: Callable[[], ModelComponents] | None = None,
        cache_size: int = 32,
    ):
        """Give a model folder, a ``loader`` or ready ``components``.

        backend: "torch" (a diffusers folder on ``device``) or "coreml" (a folder made by ``python -m convert``,
        run on ``compute_units``: ALL, CPU_AND_NE, CPU_AND_GPU, CPU_ONLY; compiled models cached in ``cache_dir``).
        """
        if backend not in ("torch", "coreml"):
            raise InvalidRequestError("backend", backend, "torch or coreml")
        if components is None and loader is None and model is None:
            raise ValueError("Engine needs a model folder, a loader or components")
        self.model_path = Path(model) if model is not None else None
        self._device, self._dtype, self._tiny, self._lora = device, dtype, tiny_decoder, lora
        self._loader = loader
        self._backend, self._compute_units, self._cache_dir = backend, compute_units, cache_dir
        self._components = components
        self._cache: OrderedDict[str, PromptEmbedding] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.load_seconds = 0.0

    # -- loading ---------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._components is not None

    def load(self) -> ModelComponents:
        """Load the model if it is not loaded yet (thread-safe); return its components."""
        with self._lock:
            if self._components is None:
                started = time.perf_counter()
                if self._loader is not None:
                    self._components = self._loader()
                elif self._backend == "coreml":
                    from ..core.paths import AppPaths
                    from .coreml_backend import load_coreml_components

                    cache = Path(self._cache_dir) if self._cache_dir else AppPaths.default().cache / "coreml"
                    self._components = load_coreml_components(
                        self.model_path, compute_units=self._compute_units, cache_dir=cache)
                else:
                    from .torch_backend import load_torch_components

                    self._components = load_torch_components(
                        self.model_path, device=self._device, dtype=self._dtype, tiny_decoder=self._tiny,
                        lora=self._lora,
                    )
                self.load_seconds = time.perf_counter() - started
            return self._components

    @property
    def components(self) -> ModelComponents:
        return self.load()

    # -- defaults ----------------------------------------------------------------------------
    def recommendations(self) -> dict[str, Any]:
        """The model's recommended steps/guidance/size (``lcm_desktop.json`` in its folder can refine them)."""
        comps = self.components
        folder = comps.extras.get("folder")
        if folder and (Path(folder) / "model_index.json").is_file():
            return recommended_settings(folder)
        width, height = comps.native_size
        guided = comps.denoiser.info.time_cond_proj_dim is not None
        return {"steps": 4, "guidance_scale": DEFAULT_LCM_GUIDANCE if guided else DEFAULT_PLAIN_GUIDANCE,
                "width": width, "height": height}

    def resolve(self, request: GenerationRequest) -> GenerationRequest:
        rec = self.recommendations()
        return request.resolved(width=rec["width"], height=rec["height"], guidance_scale=rec["guidance_scale"])

    # -- prompt cache ------------------------------------------------------------------------
    def encode(self, prompt: str) -> tuple[PromptEmbedding, bool]:
        """Encoded prompt from the LRU cache, or freshly encoded (and cached)."""
        if prompt in self._cache:
            self._cache.move_to_end(prompt)
            return self._cache[prompt], True
        embedding = self.components.text_encoder.encode(prompt)
        self._cache[prompt] = embedding
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
        decoder = comps.decoder
        if request.tiny_decoder:
            if comps.tiny_decoder is None:
                raise InvalidRequestError("tiny_decoder", True, "used only with a model that has a tiny decoder "
                                          "(pass --tiny-decoder with an AutoencoderTiny folder)")
            decoder = comps.tiny_decoder
        out = sample(comps, request, self.encode, on_step=on_step, cancel=cancel)
        decode_start = time.perf_counter()
        images = to_pil(decoder.decode(out.denoised))
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled()
        decode_seconds = time.perf_counter() - decode_start
        return GenerationResult(
            request=request,
            images=images,
            seeds=request.seeds,
            model_name=comps.name,
            backend=comps.backend,
            timings={
                "load": load_seconds,
                "encode": out.encode_seconds,
                "steps": out.step_seconds,
                "decode": decode_seconds,
                "total": time.perf_counter() - started,
            },
            denoiser_calls=out.denoiser_calls,
            negative_prompt_ignored=out.negative_prompt_ignored,
            encoder_cache_hit=out.encoder_cache_hit,
            dropped_words=dropped,
        )

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


def to_pil(images: torch.Tensor) -> list[Any]:
    """(B, 3, H, W) in [-1, 1] → PIL images, rounded as diffusers' image processor does."""
    from PIL import Image

    array = (images / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().numpy()
    return [Image.fromarray((a * 255).round().astype("uint8")) for a in array]
