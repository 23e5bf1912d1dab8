"""PyTorch components: diffusers/transformers modules on mps, cuda or cpu.

Loads a diffusers-format folder strictly offline from local files (``local_files_only``,
safetensors only).  fp16 on mps/cuda, fp32 on cpu by default; bf16 on request (fast on CPUs
with AVX-512 BF16/AMX).  Attention is PyTorch SDPA (diffusers' default processor).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from ..core.errors import BackendUnavailableError, LcmError, ModelCorruptError, ModelFormatError, UnsafeModelError
from ..core.model_files import read_json, repair_advice
from ..core.model_folder import LOADED_CLASSES, ModelFolder, check_data_files, check_safetensors, inspect_model_folder
from ..core.model_info import vae_scale_factor
from ..core.prompt_chunks import CHUNK_LENGTH
from .components import DenoiserInfo, ModelComponents, PromptEmbedding
from .prompt_encoding import PromptEncoder
from .prompt_fit import PromptFit

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
          "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def available_devices() -> list[str]:
    devices = []
    if torch.backends.mps.is_available():
        devices.append("mps")
    if torch.cuda.is_available():
        devices.append("cuda")
    return devices + ["cpu"]


def select_device(device: str | None = None) -> torch.device:
    """``None``/"auto" → mps, then cuda, then cpu; an unavailable device is a clear error."""
    available = available_devices()
    if device in (None, "auto"):
        return torch.device(available[0])
    kind = device.split(":")[0]
    if kind not in available:
        raise BackendUnavailableError(
            f"Device '{device}' is not available on this machine; choose one of: {', '.join(available)}."
        )
    return torch.device(device)


def select_dtype(device: torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.float32 if device.type == "cpu" else torch.float16
    if dtype not in DTYPES:
        raise BackendUnavailableError(f"Precision '{dtype}' is unknown; choose float32, float16 or bfloat16.")
    return DTYPES[dtype]


class TorchTextEncoder:
    """CLIP text encoder(s) with their tokenizers; SDXL: two encoders, penultimate states, pooled.

    Any prompt length: AUTOMATIC1111's syntax, 75-token chunks, weights (``prompt_encoding.py``).
    """

    def __init__(self, pairs: list, sdxl: bool, device: torch.device):
        self.pairs = pairs  # [(tokenizer, text_encoder), ...]
        self.sdxl = sdxl
        self.device = device
        self.calls = 0
        self.prompts = PromptEncoder([(tok, partial(self._run, enc)) for tok, enc in pairs], pooled=sdxl)

    def fit(self, prompt: str) -> PromptFit:
        """Nothing is cut: a long prompt is encoded in chunks."""
        return PromptFit(prompt, 0, CHUNK_LENGTH * len(self.prompts.chunks(prompt)))

    @torch.inference_mode()
    def encode(self, prompt: str) -> PromptEmbedding:
        self.calls += 1
        embedding = self.prompts.encode(prompt)
        return PromptEmbedding(embedding.hidden_states.to(self.pairs[-1][1].dtype), embedding.pooled)

    def _run(self, encoder, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One 77-token chunk: SD1.5 the last hidden states; SDXL the penultimate, and the projected pooled output."""
        ids = ids.to(self.device)
        if not self.sdxl:
            return encoder(ids)[0], None
        out = encoder(ids, output_hidden_states=True)
        return out.hidden_states[-2], out[0] if out[0].ndim == 2 else None


@dataclass
class TorchDenoiser:
    unet: torch.nn.Module
    info: DenoiserInfo
    device: torch.device
    dtype: torch.dtype
    calls: int = field(default=0)

    @torch.inference_mode()
    def __call__(self, sample, timestep, encoder_hidden_states, *, timestep_cond=None, text_embeds=None,
                 time_ids=None, residuals=None):
        self.calls += 1
        added = {"text_embeds": text_embeds, "time_ids": time_ids} if self.info.addition_time_embed else None
        extra = {}
        if residuals is not None:  # structure controls (engine/controls.py), as diffusers' pipelines pass them
            extra = {"down_block_additional_residuals": list(residuals.down) if residuals.down else None,
                     "mid_block_additional_residual": residuals.mid,
                     "down_intrablock_additional_residuals":  # the UNet pops this list: a fresh one, fresh tensors
                         [r.clone() for r in residuals.intrablock] if residuals.intrablock else None}
        return self.unet(
            sample, timestep, encoder_hidden_states=encoder_hidden_states, timestep_cond=timestep_cond,
            added_cond_kwargs=added, return_dict=False, **extra,
        )[0]


class TorchDecoder:
    """AutoencoderKL or AutoencoderTiny; applies the VAE's own scaling (and SDXL's latents mean/std)."""

    def __init__(self, vae: torch.nn.Module, device: torch.device):
        self.vae = vae
        self.device = device
        config = vae.config
        self.scale_factor = vae_scale_factor(dict(config))
        self.scaling_factor = float(getattr(config, "scaling_factor", 1.0) or 1.0)
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        self._mean_std = (
            (torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1))
            if mean is not None and std is not None else None
        )

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        latents = latents.to(self.device, self.dtype)
        if self._mean_std is not None:
            mean, std = (t.to(latents.device, latents.dtype) for t in self._mean_std)
            latents = latents * std / self.scaling_factor + mean
        else:
            latents = latents / self.scaling_factor
        return self.vae.decode(latents, return_dict=False)[0].float().cpu()


class TorchImageEncoder:
    """AutoencoderKL (posterior sampled with the request's generators) or AutoencoderTiny (direct latents)."""

    def __init__(self, vae: torch.nn.Module, device: torch.device):
        self.vae = vae
        self.device = device
        self._scaling = TorchDecoder(vae, device)  # the same scaling factor and latents mean/std as decoding

    @torch.inference_mode()
    def encode(self, images: torch.Tensor, generators: list[torch.Generator] | None = None) -> torch.Tensor:
        images = images.to(self.device, self._scaling.dtype)
        if generators is not None and images.shape[0] not in (1, len(generators)):
            raise ValueError(f"{images.shape[0]} images for {len(generators)} generators")
        if generators is not None and len(generators) > 1:
            # as diffusers' img2img batch path: the image repeated (torch.cat: contiguous), each row encoded
            # with its own generator
            if images.shape[0] == 1:
                images = torch.cat([images] * len(generators))
            latents = torch.cat([self._latents(images[i : i + 1], [g]) for i, g in enumerate(generators)])
        else:
            latents = self._latents(images, generators)
        mean_std = self._scaling._mean_std
        if mean_std is not None:
            mean, std = (t.to(latents.device, latents.dtype) for t in mean_std)
            return (latents - mean) * self._scaling.scaling_factor / std
        return latents * self._scaling.scaling_factor

    def _latents(self, images: torch.Tensor, generators: list[torch.Generator] | None) -> torch.Tensor:
        out = self.vae.encode(images)
        dist = getattr(out, "latent_dist", None)
        if dist is None:  # AutoencoderTiny: the latents themselves, whatever the generator
            latents = out.latents
        elif generators is None:
            return dist.mode()
        else:
            return torch.cat([dist.sample(g) for g in generators])
        return latents if generators is None else latents.expand(len(generators), -1, -1, -1)


def load_torch_components(
    folder: Path | str,
    *,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    tiny_decoder: Path | str | None = None,
    lora: Path | str | None = None,
) -> ModelComponents:
    """Load a diffusers folder (validated first: see ``core.model_folder``) onto a device.

    ``lora``: an LCM-LoRA ``.safetensors`` fused into the UNet at load time; a folder that holds
    ``lcm_lora/pytorch_lora_weights.safetensors`` (how the model store presents "base + LCM-LoRA"
    as one model) gets it fused automatically.
    """
    model = inspect_model_folder(folder)
    if lora is None and (model.path / LORA_SUBFOLDER / LORA_FILE).exists():  # a FIFO there is refused, not skipped
        lora = model.path / LORA_SUBFOLDER / LORA_FILE
    dev = select_device(device)
    dt = select_dtype(dev, dtype)
    unet = _load(model, "unet", dev, dt)
    vae = _load(model, "vae", dev, _vae_dtype(model, dt))
    pairs = []
    for tok_name, enc_name in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")):
        if enc_name in model.weight_files:
            pairs.append((_load_tokenizer(model, tok_name), _load(model, enc_name, dev, dt)))
    if lora is not None:
        fuse_lora(model, Path(lora), unet, vae, pairs)
    index = read_json(model.path / "model_index.json")
    components = components_from_modules(
        model.name, unet, vae, pairs, _scheduler_config(model),
        family=model.family, force_zeros_for_empty_prompt=bool(index.get("force_zeros_for_empty_prompt", True)),
    )
    if tiny_decoder is not None:
        components.tiny_decoder = load_tiny_decoder(tiny_decoder, dev, dt)
        components.tiny_image_encoder = TorchImageEncoder(components.tiny_decoder.vae, dev)
    return components


LORA_SUBFOLDER = "lcm_lora"
LORA_FILE = "pytorch_lora_weights.safetensors"


def fuse_lora(model: ModelFolder, lora: Path, unet, vae, pairs) -> None:
    """Merge an LCM-LoRA into the loaded UNet with diffusers' ``load_lora_weights`` + ``fuse_lora``.

    The converter fuses LoRAs too (convert/lora.py); the app may not import the converter and
    ``core`` may not import torch, so this small boundary is written in both places.
    """
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if lora.suffix.lower() != ".safetensors":
        raise UnsafeModelError(f"Refusing to load the LoRA {lora.name}: only .safetensors LoRAs are loaded.")
    if not lora.exists():
        raise ModelFormatError(f"The LCM-LoRA {lora} does not exist; download it again.")
    check_safetensors(lora)
    if model.family == "sdxl":
        pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=pairs[0][1], text_encoder_2=pairs[-1][1],
                                         tokenizer=pairs[0][0], tokenizer_2=pairs[-1][0], unet=unet, scheduler=None)
    else:
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=pairs[0][1], tokenizer=pairs[0][0], unet=unet,
                                       scheduler=None, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    try:
        pipe.load_lora_weights(str(lora), adapter_name="lcm")
        if "lcm" not in (getattr(unet, "peft_config", None) or {}):
            raise ValueError("no UNet weight matched the LoRA")
        pipe.fuse_lora(adapter_names=["lcm"])
        pipe.unload_lora_weights()
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise ModelFormatError(
            f"The LCM-LoRA {lora.name} does not fit {model.name} ({_short(exc)}); use the LCM-LoRA made for this "
            "model family (SD1.5, SDXL or SSD-1B)."
        ) from exc


def components_from_modules(
    name: str,
    unet: torch.nn.Module,
    vae: torch.nn.Module,
    pairs: list,
    scheduler_config: dict,
    *,
    family: str = "sd",
    force_zeros_for_empty_prompt: bool = True,
    tiny_decoder: torch.nn.Module | None = None,
) -> ModelComponents:
    """Wrap already-built modules (e.g. shared with a diffusers pipeline) as the loop's components.

    ``pairs`` is ``[(tokenizer, text_encoder), …]``: one for SD-class, two for SDXL-class models.
    """
    param = next(unet.parameters())
    dev, dt = param.device, param.dtype
    cfg = unet.config
    info = DenoiserInfo(
        in_channels=cfg.in_channels,
        sample_size=int(cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]),
        time_cond_proj_dim=cfg.time_cond_proj_dim,
        addition_time_embed=cfg.addition_embed_type == "text_time",
    )
    from ..core.control_folder import BaseUnet
    from .controls import TorchControlModels
    from .styles import TorchStyles

    return ModelComponents(
        name=name,
        family=family,  # type: ignore[arg-type]
        text_encoder=TorchTextEncoder(pairs, family == "sdxl", dev),
        denoiser=TorchDenoiser(unet, info, dev, dt),
        decoder=TorchDecoder(vae, dev),
        image_encoder=TorchImageEncoder(vae, dev),
        scheduler_config=dict(scheduler_config),
        tiny_decoder=TorchDecoder(tiny_decoder, dev) if tiny_decoder is not None else None,
        tiny_image_encoder=TorchImageEncoder(tiny_decoder, dev) if tiny_decoder is not None else None,
        force_zeros_for_empty_prompt=force_zeros_for_empty_prompt,
        backend=f"torch:{dev.type}:{str(dt).removeprefix('torch.')}",
        styles=TorchStyles(unet, vae, pairs, family=family, model=name),
        controls=TorchControlModels(BaseUnet.from_config(name, family, dict(cfg)), dev, dt),
    )


def load_tiny_decoder(folder: Path | str, device: torch.device, dtype: torch.dtype) -> TorchDecoder:
    """An ``AutoencoderTiny`` folder (e.g. madebyollin/taesd) as a decoder."""
    from diffusers import AutoencoderTiny

    folder = Path(folder).expanduser()
    safes = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not (folder / "config.json").exists() or not safes:
        raise ModelFormatError(
            f"{folder} is not a tiny decoder folder (config.json and .safetensors weights expected, "
            "as in madebyollin/taesd)."
        )
    check_data_files(folder)
    for file in safes:
        check_safetensors(file)
    try:
        vae = AutoencoderTiny.from_pretrained(folder, use_safetensors=True, local_files_only=True)
    except LOAD_ERRORS as exc:
        raise ModelCorruptError(
            f"The tiny decoder in {folder} could not be loaded ({_short(exc)}); {repair_advice(folder)}."
        ) from exc
    return TorchDecoder(vae.to(device, dtype).eval(), device)


def _vae_dtype(model: ModelFolder, dtype: torch.dtype) -> torch.dtype:
    """fp32 where diffusers upcasts (``core.vae_precision``: SDXL-class with ``force_upcast``), else ``dtype``."""
    from ..core.vae_precision import vae_runs_in_fp32

    config = read_json(model.path / "vae" / "config.json")
    return torch.float32 if dtype == torch.float16 and vae_runs_in_fp32(model.family, config) else dtype


# The load boundary: diffusers, transformers and safetensors raise almost any exception type on a
# damaged or hostile file (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError,
# SafetensorError, ...).  Whatever they raise becomes one ModelCorruptError naming the component.
LOAD_ERRORS = (Exception,)


def _load(model: ModelFolder, name: str, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    import importlib

    library, class_name = model.components[name]
    if (library, class_name) not in LOADED_CLASSES.get(name, ()):  # checked by inspect_model_folder too
        raise UnsafeModelError(f"Refusing to load {model.name}/{name}: {library}.{class_name} is not a class LCM "
                               "Desktop loads.")
    cls = getattr(importlib.import_module(str(library)), str(class_name))  # diffusers or transformers only
    try:
        module = cls.from_pretrained(model.path / name, use_safetensors=True, local_files_only=True, torch_dtype=dtype)
    except LcmError:
        raise
    except LOAD_ERRORS as exc:
        raise ModelCorruptError(
            f"The {name} of {model.name} could not be loaded ({_short(exc)}); {repair_advice(model.path / name)}."
        ) from exc
    return module.to(device).eval()


def _load_tokenizer(model: ModelFolder, name: str):
    from transformers import CLIPTokenizer

    try:
        return CLIPTokenizer.from_pretrained(model.path / name, local_files_only=True)
    except LOAD_ERRORS as exc:
        raise ModelCorruptError(
            f"The {name} of {model.name} could not be loaded ({_short(exc)}); {repair_advice(model.path / name)}."
        ) from exc


def _scheduler_config(model: ModelFolder) -> dict:
    """The folder's scheduler settings; an LCM-LoRA base's Euler/PNDM config becomes LCMScheduler's."""
    return read_json(model.path / "scheduler" / "scheduler_config.json")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
