"""Structure controls on the PyTorch backend: ControlNets beside the UNet at every step, T2I-Adapters once per image.

Exactly as diffusers' ``StableDiffusionControlNetPipeline`` / ``StableDiffusionAdapterPipeline`` (and their XL
siblings) do it, so the pixels match:

- the control image: fitted to the output size by the starting image's rule (``core.init_image``), turned into
  the control image by its preprocessor (``core.preprocess``), then float [0, 1], (1, C, H, W), one row per row
  of the UNet's batch (the CFG batch included);
- ControlNet (per step, when ``ControlSpec.applies_at`` the step — diffusers' ``controlnet_keep``): called with
  the UNet's own input, timestep and text states (no guidance embedding: diffusers gives it none), the control
  image and ``conditioning_scale = scale``; SDXL-class with the UNet's size conditioning.  Several ControlNets'
  residuals are summed in order (``MultiControlNetModel``).  A step a control skips passes nothing, which
  equals diffusers' residuals × 0;
- T2I-Adapter (once per request): ``adapter(image) × scale``; its features go into the UNet's down blocks
  (``down_intrablock_additional_residuals``) on the steps the control applies to (diffusers' SD adapter pipeline
  applies them to all; the XL one's ``adapter_conditioning_factor`` is ``end`` here).

``TorchControlModels`` loads each control folder once (allow-listed classes, safetensors only, local files) and
keeps it on the components' device; ``prepare_controls`` turns a request's ``ControlSpec``s into
``RequestControls``, which the sampler asks for each step's ``ControlResiduals``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.control import ControlSpec
from ..core.control_folder import BaseUnet, ControlFolder, ControlKind, check_control_fits, inspect_control_folder
from ..core.errors import InvalidRequestError, LcmError, ModelCorruptError
from ..core.model_files import repair_advice
from .components import ControlResiduals

ControlResolver = Callable[[str | Path], Path]  # a control model's name or folder → its folder


@dataclass(frozen=True)
class LoadedControl:
    folder: ControlFolder
    module: torch.nn.Module


class TorchControlModels:
    """Control models of one loaded base model, each loaded once, on the base's device and dtype."""

    def __init__(self, base: BaseUnet, device: torch.device, dtype: torch.dtype):
        self.base = base
        self.device = device
        self.dtype = dtype
        self._loaded: dict[Path, LoadedControl] = {}

    def load(self, path: Path) -> LoadedControl:
        """The control model at ``path``, checked against the base (``core.control_folder``) and loaded once."""
        key = Path(path).expanduser().resolve()
        if key not in self._loaded:
            folder = inspect_control_folder(key)
            check_control_fits(folder, self.base)
            self._loaded[key] = LoadedControl(folder, self._module(folder))
        return self._loaded[key]

    def _module(self, folder: ControlFolder) -> torch.nn.Module:
        from diffusers import ControlNetModel, T2IAdapter

        cls = ControlNetModel if folder.kind is ControlKind.CONTROLNET else T2IAdapter
        # a catalog download keeps only the fp16 file (diffusion_pytorch_model.fp16.safetensors)
        fp16_only = all(f.name.endswith(".fp16.safetensors") for f in folder.weight_files)
        try:
            module = cls.from_pretrained(folder.path, use_safetensors=True, local_files_only=True,
                                         torch_dtype=self.dtype, variant="fp16" if fp16_only else None)
        except LcmError:
            raise
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ModelCorruptError(f"The control model {folder.name} could not be loaded ({first}); "
                                    f"{repair_advice(folder.path)}.") from exc
        return module.to(self.device).eval()


@dataclass
class ActiveControl:
    spec: ControlSpec
    kind: ControlKind
    module: torch.nn.Module
    image: torch.Tensor  # (1, C, H, W) in [0, 1]
    adapter_state: list[torch.Tensor] | None = None  # adapters: features × scale, computed once


class RequestControls:
    """One request's controls; ``residuals(...)`` gives what a step's UNet call adds (``None``: nothing)."""

    def __init__(self, active: list[ActiveControl]):
        self.active = active
        self.calls = 0  # ControlNet forward passes (tests, benchmarks)

    @torch.inference_mode()
    def residuals(self, step: int, steps: int, sample: torch.Tensor, timestep: torch.Tensor,
                  encoder_hidden_states: torch.Tensor,
                  added_cond_kwargs: dict | None = None) -> ControlResiduals | None:
        """``sample``: the UNet's input this step (B or 2B rows with CFG), ``encoder_hidden_states`` its text states."""
        rows = sample.shape[0]
        down: list[torch.Tensor] | None = None
        mid: torch.Tensor | None = None
        intrablock: list[torch.Tensor] | None = None
        for control in self.active:
            if not control.spec.applies_at(step, steps):
                continue
            if control.kind is ControlKind.CONTROLNET:
                image = control.image.repeat_interleave(rows, dim=0)
                self.calls += 1
                d, m = control.module(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                                      controlnet_cond=image, conditioning_scale=control.spec.scale, guess_mode=False,
                                      added_cond_kwargs=added_cond_kwargs, return_dict=False)
                down = list(d) if down is None else [a + b for a, b in zip(down, d)]
                mid = m if mid is None else mid + m
            else:
                state = [s.repeat(rows, 1, 1, 1) for s in control.adapter_state or ()]
                intrablock = state if intrablock is None else [a + b for a, b in zip(intrablock, state)]
        if down is None and intrablock is None:
            return None
        return ControlResiduals(down=tuple(down) if down is not None else None, mid=mid,
                                intrablock=tuple(intrablock) if intrablock is not None else None)


def prepare_controls(models: TorchControlModels, specs: tuple[ControlSpec, ...], width: int, height: int,
                     resolve: ControlResolver) -> RequestControls:
    """Load each spec's control model (once per engine), fit and preprocess its image, run adapters once."""
    active = []
    for spec in specs:
        loaded = models.load(resolve(spec.model))
        image = control_image(spec, width, height, grey=loaded.folder.in_channels == 1)
        tensor = image_to_tensor(image).to(models.device, models.dtype)
        control = ActiveControl(spec, loaded.folder.kind, loaded.module, tensor)
        if control.kind is ControlKind.ADAPTER:
            with torch.inference_mode():
                control.adapter_state = [f * spec.scale for f in loaded.module(tensor)]
        active.append(control)
    return RequestControls(active)


def control_image(spec: ControlSpec, width: int, height: int, grey: bool = False) -> Any:
    """The spec's picture fitted to ``width`` × ``height`` (as a starting image) and preprocessed; a PIL image."""
    from ..core.init_image import load_init_image
    from ..core.preprocess import preprocess_control

    try:
        fitted = load_init_image(spec.image, width, height)
    except InvalidRequestError as exc:  # the same checks as a starting image, said of the control
        raise InvalidRequestError("control image", exc.value, exc.allowed) from None
    image = preprocess_control(fitted, spec.preprocess)
    return image.convert("L") if grey else image


def image_to_tensor(image: Any) -> torch.Tensor:
    """A PIL image → (1, C, H, W) float32 in [0, 1] (diffusers' control image processor: no normalising)."""
    import numpy as np

    array = np.asarray(image).astype(np.float32) / 255.0
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()
