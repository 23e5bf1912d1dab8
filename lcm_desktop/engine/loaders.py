"""How an engine gets its model: one small loader object per backend (no torch until called).

    Engine(TorchLoader(folder, device="cpu", dtype="bfloat16"))
    Engine(CoreMLLoader(folder, compute_units="CPU_AND_NE"))
    Engine.from_components(components)            # tests, benchmarks: modules built elsewhere

A loader is any callable returning ``ModelComponents``; these two also name the folder they load,
so the engine can describe the model (``core.model_info``) once, at load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .components import ModelComponents

Loader = Callable[[], "ModelComponents"]


@dataclass(frozen=True)
class TorchLoader:
    """A diffusers folder on ``device`` (auto: mps → cuda → cpu) at ``dtype`` (auto: fp16 on GPUs, fp32 on CPUs)."""

    folder: Path
    device: str | None = None
    dtype: str | None = None
    tiny_decoder: Path | None = None  # AutoencoderTiny folder: previews and fast final decodes
    lora: Path | None = None  # an LCM-LoRA fused at load

    def __call__(self) -> ModelComponents:
        from .torch_backend import load_torch_components

        return load_torch_components(self.folder, device=self.device, dtype=self.dtype,
                                     tiny_decoder=self.tiny_decoder, lora=self.lora)


@dataclass(frozen=True)
class CoreMLLoader:
    """A converted Core ML folder (ours or Apple's layout) on ``compute_units``; compiled models cached."""

    folder: Path
    compute_units: str = "ALL"
    cache_dir: Path | None = None  # default: the app's cache folder / coreml

    def __call__(self) -> ModelComponents:
        from ..core.paths import AppPaths
        from .coreml_backend import load_coreml_components

        cache = self.cache_dir if self.cache_dir is not None else AppPaths.default().cache / "coreml"
        return load_coreml_components(self.folder, compute_units=self.compute_units, cache_dir=cache)
