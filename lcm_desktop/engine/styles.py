"""Style LoRAs on a loaded PyTorch model: loaded once each, kept unfused, weighted per request.

    styles = TorchStyles(unet, vae, pairs, family="sd", model="lcm-dreamshaper-v7")
    styles.apply((LoraWeight("papercut", 0.8), LoraWeight("ink", 0.5)), store.path_of)  # loads both, once
    styles.apply((LoraWeight("papercut", 1.0),), store.path_of)                         # a new weight: no load
    styles.apply((), store.path_of)                                                     # the bare model

Each file is loaded with diffusers' own loader (``load_lora_weights(file, adapter_name=…)`` on a pipeline
wrapped around our modules), which converts kohya/AUTOMATIC1111 keys and loads UNet and text-encoder
parts; then every request calls ``set_adapters(names, weights)``.  The base weights are never touched:
switching styles or weights changes only PEFT's per-adapter scales, so the model is not reloaded
(a model with an LCM-LoRA fused in at load keeps it; styles stack on top, as diffusers' LCM docs did).

Semantics: we follow diffusers' ``set_adapters`` — a float weight scales every LoRA layer of that adapter
(attention projections and, where the file has them, ResNet/conv layers) in the UNet and the text
encoders alike; per-block dictionaries are not offered.  The converter bakes styles with the same calls
(``set_adapters`` then ``fuse_lora``), so a baked Core ML model matches these weights.

Before loading, the file is inspected (``core.lora_file``: safetensors only, a format diffusers loads)
and checked against the model's family; after loading, a file that added no layer is an error, never a
silent no-op.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.errors import ModelFormatError, NonFiniteError
from ..core.lora_file import LoraInfo, StyleFile, check_lora_fits, inspect_lora, lora_hash
from ..core.request import LoraWeight
from .components import StyleState
from .finite import non_finite_parameters

log = logging.getLogger(__name__)

MAX_KEPT = 8  # adapters kept loaded beyond the active ones (least recently used are deleted)
TEXT_PARTS = ("text_encoder", "text_encoder_2")


@dataclass
class _Loaded:
    adapter: str  # the PEFT adapter name (style names may hold characters PEFT cannot)
    info: LoraInfo
    hash: str
    layers: dict[str, int]  # component → LoRA layers injected
    seconds: float


class TorchStyles:
    """The style adapters of one loaded model (``ModelComponents.styles`` of the PyTorch backend)."""

    def __init__(self, unet: torch.nn.Module, vae: torch.nn.Module, pairs: list, *, family: str, model: str):
        self.unet, self.vae, self.pairs = unet, vae, pairs
        self.family, self.model = family, model
        self._pipe = None
        self._loaded: OrderedDict[tuple, _Loaded] = OrderedDict()
        self._counter = 0
        self._enabled = False
        self.loads = 0  # files loaded so far (tests: switching weights must not load again)
        self.last_switch_seconds = 0.0

    # -- per request -------------------------------------------------------------------------
    def apply(self, loras: tuple[LoraWeight, ...], resolve: Callable[[str], Path]) -> StyleState:
        started = time.perf_counter()
        styles = tuple(StyleFile(lora.name, resolve(lora.name), lora.weight) for lora in loras)
        loaded = [self._ensure(style) for style in styles]
        pipe = self._pipe
        if not styles:
            if pipe is not None and self._enabled:
                pipe.disable_lora()
                self._enabled = False
            return StyleState()
        pipe.enable_lora()  # cheap; adapters loaded while disabled start enabled, the others need it
        self._enabled = True
        pipe.set_adapters([entry.adapter for entry in loaded], [style.weight for style in styles])
        self._evict(keep={entry.adapter for entry in loaded})
        self.last_switch_seconds = time.perf_counter() - started
        text_key = tuple((entry.adapter, style.weight) for entry, style in zip(loaded, styles)
                         if any(entry.layers.get(part) for part in TEXT_PARTS))
        return StyleState(text_key, tuple((style.name, entry.hash) for entry, style in zip(loaded, styles)))

    # -- loading -----------------------------------------------------------------------------
    def _ensure(self, style: StyleFile) -> _Loaded:
        path = Path(style.path)
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise ModelFormatError(f"The style {style.name} ({path}) cannot be read ({exc.strerror or exc}); "
                                   "import it again.") from exc
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)  # a replaced file is loaded again
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        info = inspect_lora(path)
        check_lora_fits(info, family=self.family, model=self.model,
                        cross_attention_dim=getattr(self.unet.config, "cross_attention_dim", None))
        started = time.perf_counter()
        self._counter += 1
        adapter = f"style{self._counter}"
        pipe = self._pipeline()
        try:
            with warnings.catch_warnings():  # PEFT warns that a second adapter joins the first: that is the point
                warnings.filterwarnings("ignore", message="Already found a `peft_config`")
                pipe.load_lora_weights(str(path), adapter_name=adapter)
        except (ValueError, RuntimeError, KeyError, TypeError, IndexError, AttributeError) as exc:
            self._forget(adapter)
            raise ModelFormatError(
                f"The style {style.name} does not fit {self.model} ({_short(exc)}); use a style made for this "
                f"model's base ({info.family_label} file, {self.family} model)."
            ) from exc
        layers = {name: _layers(module, adapter) for name, module in self._modules().items()}
        if not any(layers.values()):
            self._forget(adapter)
            raise ModelFormatError(
                f"The style {style.name} changed nothing in {self.model}: none of its {info.modules} layers matched "
                "the model's; use a style made for this model's base."
            )
        bad = [name for module in self._modules().values() for name in non_finite_parameters(module, f".{adapter}.")]
        if bad:  # every image made with it would be black
            self._forget(adapter)
            count = f"{len(bad)} tensor{'s' if len(bad) > 1 else ''}"
            raise NonFiniteError(f"The style {style.name} holds NaN or infinite weights ({count}, e.g. "
                                 f"{bad[0].replace(f'.{adapter}.', '.')}); it cannot be used — replace the file.")
        if sum(layers.values()) < info.modules:
            log.warning("style %s: %d of its %d layers matched %s", style.name, sum(layers.values()), info.modules,
                        self.model)
        entry = _Loaded(adapter, info, lora_hash(path), layers, time.perf_counter() - started)
        self._loaded[key] = entry
        self.loads += 1
        log.info("loaded style %s (%s) in %.2f s", style.name, layers, entry.seconds)
        return entry

    def _pipeline(self):
        """A diffusers pipeline around our own modules (nothing copied), for its LoRA loader."""
        if self._pipe is None:
            from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

            (tokenizer, encoder), *rest = self.pairs
            if self.family == "sdxl":
                tokenizer_2, encoder_2 = rest[0] if rest else (None, None)
                self._pipe = StableDiffusionXLPipeline(
                    vae=self.vae, text_encoder=encoder, text_encoder_2=encoder_2, tokenizer=tokenizer,
                    tokenizer_2=tokenizer_2, unet=self.unet, scheduler=None)
            else:
                self._pipe = StableDiffusionPipeline(
                    vae=self.vae, text_encoder=encoder, tokenizer=tokenizer, unet=self.unet, scheduler=None,
                    safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        return self._pipe

    def _modules(self) -> dict[str, torch.nn.Module]:
        modules = {"unet": self.unet}
        for name, (_tokenizer, encoder) in zip(TEXT_PARTS, self.pairs):
            modules[name] = encoder
        return modules

    def _forget(self, adapter: str) -> None:
        """Remove a half-loaded adapter from every module that has it."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        for module in self._modules().values():
            for layer in module.modules():
                if isinstance(layer, BaseTunerLayer) and adapter in getattr(layer, "lora_A", {}):
                    layer.delete_adapter(adapter)
            config = getattr(module, "peft_config", None)
            if isinstance(config, dict):
                config.pop(adapter, None)

    def _evict(self, keep: set[str]) -> None:
        idle = [key for key, entry in self._loaded.items() if entry.adapter not in keep]
        for key in idle[: max(0, len(idle) - MAX_KEPT)]:
            self._pipe.delete_adapters(self._loaded.pop(key).adapter)


def _layers(module: torch.nn.Module, adapter: str) -> int:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return sum(1 for layer in module.modules()
               if isinstance(layer, BaseTunerLayer) and adapter in getattr(layer, "lora_A", {}))


def _short(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return (lines or [type(exc).__name__])[0][:200]


class BakedStyles:
    """The styles a Core ML model was converted with (``Manifest.loras``): always on, never changed.

    Its images record them in ``Lora hashes``; asking for live styles is one line saying how to bake them.
    """

    def __init__(self, baked: tuple, model: str):
        self.hashes = tuple((lora.name, lora.hash) for lora in baked)
        self.model = model

    def apply(self, loras: tuple[LoraWeight, ...], resolve: Callable[[str], Path]) -> StyleState:
        if loras:
            from ..core.errors import InvalidRequestError

            baked = ", ".join(f"{name}" for name, _ in self.hashes) or "none"
            raise InvalidRequestError(
                "loras", ", ".join(lora.name for lora in loras),
                f"left out for {self.model}, a Core ML model whose styles are baked in when it is converted "
                f"(baked here: {baked}; convert again with python -m convert … --lora FILE:WEIGHT, or use the "
                "PyTorch backend for live styles)")
        return StyleState((), self.hashes)
