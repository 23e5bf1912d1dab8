"""Core ML components: a converted folder (``python -m convert``) behind the loop's Protocols.

    components = load_coreml_components(folder, compute_units="CPU_AND_NE", cache_dir=paths.cache / "coreml")
    engine = Engine(loader=lambda: components)   # the same sampler loop as the PyTorch backend

Everything the manifest promises is checked at this boundary: each input's shape and dtype
(a size that was not converted is one clear error), each output's presence and shape.  The
Mac-only part is a small ``CoreMLRuntime`` (compile a package, load a compiled model); the
default uses coremltools and exists only on macOS.  Compiled models (``.mlmodelc``) are cached
under ``cache_dir`` by package hash, so only the first load of a model pays for compilation.
Tests inject a runtime whose predictors run the same wrappers in PyTorch.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..core.clip_vocab import parse_merges
from ..core.coreml_layout import read_coreml_manifest
from ..core.errors import InvalidRequestError, ModelCorruptError, ModelFormatError, PromptTooLongError
from ..core.manifest import (
    TEXT_ENCODER,
    TEXT_ENCODER_2,
    TINY_DECODER,
    UNET,
    VAE_DECODER,
    VAE_ENCODER,
    ComponentSpec,
    Manifest,
    TensorSpec,
)
from ..core.mask import INPAINT_INPUTS, LATENT_CHANNELS
from ..core.model_files import confined_file, read_json, read_text
from ..core.paths import resource_path
from ..core.prompt_chunks import CHUNK_LENGTH
from .components import DenoiserInfo, ModelComponents, PromptEmbedding
from .coreml_reference import REFERENCE, ReferenceRuntime
from .coreml_runtime import CompiledModelCache, CoreMLRuntime, CoreMLToolsRuntime, Predictor
from .prompt_encoding import PromptEncoder, pad_chunks
from .prompt_fit import PromptFit, fit_prompt
from .styles import BakedStyles

log = logging.getLogger(__name__)

# REFERENCE: not Core ML but our reference executor (any OS, slow, for debugging; see coreml_reference.py).
COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY", REFERENCE)
_NP_DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32}


class CoreMLModel:
    """One component: checks inputs against the manifest, predicts, checks outputs."""

    def __init__(self, spec: ComponentSpec, predictor: Predictor):
        self.spec = spec
        self.predictor = predictor
        self.calls = 0

    def __call__(self, **inputs: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
        feed = {}
        for tensor_spec in self.spec.inputs:
            if tensor_spec.name not in inputs:
                raise InvalidRequestError(
                    f"{self.spec.name}.{tensor_spec.name}", None, f"a {tensor_spec.describe()} input"
                )
            feed[tensor_spec.name] = _to_array(self.spec.name, tensor_spec, inputs[tensor_spec.name])
        extra = set(inputs) - {s.name for s in self.spec.inputs}
        if extra:
            raise InvalidRequestError(
                f"{self.spec.name} inputs", sorted(extra), f"only {[s.name for s in self.spec.inputs]}"
            )
        self.calls += 1
        out = self.predictor.predict(feed)
        result = {}
        for tensor_spec in self.spec.outputs:
            if tensor_spec.name not in out:
                raise ModelFormatError(
                    f"{self.spec.name} returned no '{tensor_spec.name}' (got {sorted(out)}); the model folder does not "
                    "match its manifest: convert it again."
                )
            array = np.asarray(out[tensor_spec.name])
            if tuple(array.shape) != tensor_spec.shape:
                raise ModelFormatError(
                    f"{self.spec.name}.{tensor_spec.name} has shape {tuple(array.shape)}, the manifest says "
                    f"{tensor_spec.shape}; convert the model again."
                )
            result[tensor_spec.name] = torch.from_numpy(array.astype(np.float32, copy=False))
        return result


def _to_array(component: str, spec: TensorSpec, value: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().to("cpu", torch.float32 if value.is_floating_point() else value.dtype).numpy()
    array = np.asarray(value)
    if tuple(array.shape) != spec.shape:
        raise InvalidRequestError(
            f"{component}.{spec.name}", f"shape {tuple(array.shape)}",
            f"shape {spec.shape}, what this Core ML model was converted for",
        )
    if array.dtype.kind not in "fiu":  # bool/complex/object: never meant for this input
        raise InvalidRequestError(f"{component}.{spec.name}", f"dtype {array.dtype}", f"{spec.dtype}")
    return array.astype(_NP_DTYPES[spec.dtype], copy=False)


class CoreMLTextEncoder:
    """One or two CLIP encoders (SDXL: penultimate states concatenated, pooled from the second).

    Each package takes exactly 77 ids, so it runs once per 75-token chunk (``prompt_encoding.py``:
    AUTOMATIC1111 syntax, weights); the embedding is then padded with empty-prompt chunks to the
    ``max_chunks`` the Unet was converted for.  A prompt needing more is a ``PromptTooLongError`` —
    except on models converted before ``max_prompt_chunks`` existed (``legacy``: 77 tokens), where it
    is cut at a word as it always was (``fit``).
    """

    def __init__(self, pairs: list[tuple[object, CoreMLModel]], max_chunks: int = 1, legacy: bool = False):
        self.pairs = pairs
        self.max_chunks = max_chunks
        self.legacy = legacy
        self.calls = 0
        self.prompts = PromptEncoder([(tok, partial(_run_text_encoder, model)) for tok, model in pairs],
                                     pooled=len(pairs) > 1)
        self._empty: torch.Tensor | None = None

    def fit(self, prompt: str) -> PromptFit:
        limit = CHUNK_LENGTH * self.max_chunks
        if not self.legacy or len(self.prompts.chunks(prompt)) <= self.max_chunks:
            return PromptFit(prompt, 0, limit)  # too long for a new model: encode() says so, naming the fix
        return fit_prompt(prompt, lambda text: CHUNK_LENGTH * len(self.prompts.chunks(text)), limit)

    def encode(self, prompt: str) -> PromptEmbedding:
        chunked = self.prompts.chunks(prompt)
        if len(chunked) > self.max_chunks:
            raise PromptTooLongError("prompt", chunked.token_count, len(chunked), self.max_chunks)
        self.calls += 1
        embedding = self.prompts.encode(prompt)
        if len(chunked) == self.max_chunks:
            return embedding
        if self._empty is None:
            self._empty = self.prompts.encode("").hidden_states
        return PromptEmbedding(pad_chunks(embedding.hidden_states, self.max_chunks, self._empty), embedding.pooled)


def _run_text_encoder(model: CoreMLModel, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk of 77 ids through a TextEncoder package: its hidden states and pooled output."""
    out = model(input_ids=ids.numpy().astype(np.float32))
    return out.get("last_hidden_state", out.get("hidden_embeds")), out["pooled_outputs"]


class CoreMLDenoiser:
    """The UNet; runs a batch larger than the converted one row-block by row-block (e.g. CFG on a B=1 UNet)."""

    def __init__(self, model: CoreMLModel, manifest: Manifest):
        self.model = model
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        spec = model.spec
        b, c, h, w = spec.input("sample").shape
        self.inpainting = spec.input(INPAINT_INPUTS[0]) is not None  # takes the mask and masked-picture latents
        if self.inpainting:
            c += sum(spec.input(name).shape[1] for name in INPAINT_INPUTS)  # the UNet's 9 channels
        self.batch = b
        cond = spec.input("timestep_cond")
        hidden = spec.input("encoder_hidden_states").shape
        self.layout_4d = len(hidden) == 4
        self.tokens = hidden[-1] if self.layout_4d else hidden[1]  # 77 per prompt chunk
        self.info = DenoiserInfo(
            in_channels=c,
            sample_size=h if h == w else manifest.sample_size,
            time_cond_proj_dim=cond.shape[1] if cond is not None else None,
            addition_time_embed=spec.input("text_embeds") is not None,
            fixed_shape=(b, c, h, w),
        )
        self.scale_factor = manifest.vae_scale_factor

    @property
    def calls(self) -> int:
        return self.model.calls

    def __call__(self, sample, timestep, encoder_hidden_states, *, timestep_cond=None, text_embeds=None,
                 time_ids=None) -> torch.Tensor:
        _, c, h, w = self.info.fixed_shape
        rows = sample.shape[0]
        if tuple(sample.shape[1:]) != (c, h, w):
            got = f"{sample.shape[-1] * self.scale_factor}x{sample.shape[-2] * self.scale_factor}"
            raise InvalidRequestError(
                "size", got, f"{w * self.scale_factor}x{h * self.scale_factor}, the size this Core ML model was "
                "converted for (convert it again with --size to use another)",
            )
        padded = -rows % self.batch  # e.g. one LCM row on Apple's two-row (CFG) UNet: pad, then drop
        if padded:
            sample, encoder_hidden_states, timestep_cond, text_embeds, time_ids = (
                None if x is None else torch.cat([x, x[-1:].expand(padded, *x.shape[1:])])
                for x in (sample, encoder_hidden_states, timestep_cond, text_embeds, time_ids)
            )
            timestep = torch.as_tensor(timestep)
            if timestep.ndim == 1:
                timestep = torch.cat([timestep, timestep[-1:].expand(padded)])
        wants_cond = self.info.time_cond_proj_dim is not None
        if wants_cond != (timestep_cond is not None):
            needs = "needs" if wants_cond else "has no"
            raise InvalidRequestError("timestep_cond", None if timestep_cond is None else "a tensor",
                                      f"given exactly when the model has a guidance embedding (this one {needs} one)")
        timestep = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1).expand(rows + padded)
        hidden = encoder_hidden_states
        if self.layout_4d and hidden.ndim == 3:
            hidden = hidden.transpose(1, 2).unsqueeze(2)  # (B, 77·k, D) → Apple's (B, D, 1, 77·k)
        outputs = []
        for start in range(0, rows + padded, self.batch):
            block = slice(start, start + self.batch)
            feed = {"sample": sample[block], "timestep": timestep[block], "encoder_hidden_states": hidden[block]}
            if self.inpainting:  # the sampler's 9 channels → the package's named inputs
                rows_in = feed["sample"]
                feed["sample"] = rows_in[:, :LATENT_CHANNELS]
                feed[INPAINT_INPUTS[0]] = rows_in[:, LATENT_CHANNELS : LATENT_CHANNELS + 1]
                feed[INPAINT_INPUTS[1]] = rows_in[:, LATENT_CHANNELS + 1 :]
            if wants_cond:
                feed["timestep_cond"] = timestep_cond[block]
            if self.info.addition_time_embed:
                if text_embeds is None or time_ids is None:
                    raise InvalidRequestError("text_embeds", None, "given (with time_ids) for an SDXL-class UNet")
                feed["text_embeds"], feed["time_ids"] = text_embeds[block], time_ids[block]
            outputs.append(self.model(**feed)["noise_pred"])
        return (torch.cat(outputs) if len(outputs) > 1 else outputs[0])[:rows]


class CoreMLDecoder:
    """VAEDecoder (or TinyDecoder): scaled latents → images in [-1, 1] (one row per call, as converted)."""

    def __init__(self, model: CoreMLModel, manifest: Manifest, tiny: bool = False):
        self.model = model
        self.scale_factor = manifest.vae_scale_factor
        self.scaling_factor = manifest.tiny_decoder_scaling_factor if tiny else manifest.vae_scaling_factor
        self.mean_std = None if tiny else _mean_std(manifest)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents.detach().float().cpu()
        if self.mean_std is not None:  # as diffusers does for VAEs with latents_mean/std
            mean, std = self.mean_std
            z = z * std / self.scaling_factor + mean
        else:
            z = z / self.scaling_factor
        return torch.cat([self.model(z=z[i : i + 1])["image"] for i in range(z.shape[0])])


class CoreMLImageEncoder:
    """VAEEncoder: images in [-1, 1] → the posterior's moments (fixed size, one image per call); sampling with
    the request's generators (as diffusers' ``DiagonalGaussianDistribution.sample``) and scaling stay here."""

    def __init__(self, model: CoreMLModel, manifest: Manifest):
        self.model = model
        self.scaling_factor = manifest.vae_scaling_factor
        self.mean_std = _mean_std(manifest)

    def encode(self, images: torch.Tensor, generators: list[torch.Generator] | None = None) -> torch.Tensor:
        from diffusers.utils.torch_utils import randn_tensor

        x = images.detach().float().cpu()
        moments = torch.cat([self.model(x=x[i : i + 1])["latent"] for i in range(x.shape[0])])
        mean, logvar = moments.chunk(2, dim=1)
        if generators is None:
            latents = mean
        else:
            if mean.shape[0] == 1:
                mean, logvar = (t.expand(len(generators), -1, -1, -1) for t in (mean, logvar))
            std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
            latents = torch.cat([
                mean[i : i + 1] + std[i : i + 1] * randn_tensor((1, *mean.shape[1:]), generator=g, dtype=mean.dtype)
                for i, g in enumerate(generators)
            ])
        if self.mean_std is not None:
            mean_, std_ = self.mean_std
            return (latents - mean_) * self.scaling_factor / std_
        return latents * self.scaling_factor


def _mean_std(manifest: Manifest) -> tuple[torch.Tensor, torch.Tensor] | None:
    if manifest.vae_latents_mean is None or manifest.vae_latents_std is None:
        return None
    return (torch.tensor(manifest.vae_latents_mean).view(1, -1, 1, 1),
            torch.tensor(manifest.vae_latents_std).view(1, -1, 1, 1))


def load_coreml_components(
    folder: Path | str,
    *,
    compute_units: str = "ALL",
    cache_dir: Path | str,
    runtime: CoreMLRuntime | None = None,
) -> ModelComponents:
    """Load a converted Core ML folder (or a folder of Apple ml-stable-diffusion packages) into the loop's components.

    ``compute_units``: ALL, CPU_AND_NE (Neural Engine), CPU_AND_GPU or CPU_ONLY; or REFERENCE, the
    reference executor (any OS, slow: for debugging).  ``cache_dir``: where compiled models are
    kept (the app's cache folder; unused by REFERENCE).  ``runtime``: Core ML itself by default
    (macOS only: BackendUnavailableError elsewhere).
    """
    folder = Path(folder).expanduser()
    if compute_units not in COMPUTE_UNITS:
        raise InvalidRequestError("compute_units", compute_units, f"one of {', '.join(COMPUTE_UNITS)}")
    if not folder.is_dir():
        raise ModelFormatError(f"{folder} is not a folder; pass a Core ML model folder made by `python -m convert`.")
    manifest = read_coreml_manifest(folder)
    for name in (TEXT_ENCODER, UNET, VAE_DECODER):
        manifest.require(name)
    if manifest.family == "sdxl":
        manifest.require(TEXT_ENCODER_2)
    if compute_units == REFERENCE:  # packages run as they are: nothing to compile or cache
        runtime = runtime if runtime is not None else ReferenceRuntime()
        locate = lambda spec: folder / spec.file  # noqa: E731
    else:
        runtime = runtime if runtime is not None else CoreMLToolsRuntime()
        cache = CompiledModelCache(Path(cache_dir), runtime)
        locate = lambda spec: cache.compiled_path(folder, spec)  # noqa: E731

    def model(name: str) -> CoreMLModel:
        spec = manifest.require(name)
        return CoreMLModel(spec, runtime.load(locate(spec), compute_units))

    tokenizers = _load_tokenizers(folder, manifest)
    encoders = [TEXT_ENCODER, TEXT_ENCODER_2] if manifest.family == "sdxl" else [TEXT_ENCODER]
    pairs = [(tok, model(name)) for tok, name in zip(tokenizers, encoders)]
    denoiser = CoreMLDenoiser(model(UNET), manifest)
    image_encoder = CoreMLImageEncoder(model(VAE_ENCODER), manifest) if manifest.component(VAE_ENCODER) else None
    tiny_decoder = CoreMLDecoder(model(TINY_DECODER), manifest, tiny=True) if manifest.component(TINY_DECODER) else None
    components = ModelComponents(
        name=manifest.name,
        family=manifest.family,  # type: ignore[arg-type]
        text_encoder=CoreMLTextEncoder(pairs, prompt_chunks(manifest, denoiser),
                                       legacy=manifest.max_prompt_chunks is None),
        denoiser=denoiser,
        decoder=CoreMLDecoder(model(VAE_DECODER), manifest),
        image_encoder=image_encoder,
        tiny_decoder=tiny_decoder,
        scheduler_config=_scheduler_config(
            folder / manifest.scheduler_config
            if manifest.scheduler_config
            else resource_path("configs", "lcm_scheduler.json")
        ),
        force_zeros_for_empty_prompt=manifest.force_zeros_for_empty_prompt,
        backend=f"coreml:{compute_units}",
        styles=BakedStyles(manifest.loras, manifest.name),
        extras={"manifest": manifest, "compute_units": compute_units},
    )
    return components


def prompt_chunks(manifest: Manifest, denoiser: CoreMLDenoiser) -> int:
    """How many 75-token chunks the Unet takes: what the manifest says, checked against the package's input."""
    tokens = denoiser.tokens
    chunks = manifest.max_prompt_chunks or 1
    if tokens != CHUNK_LENGTH * chunks:
        raise ModelFormatError(
            f"The Unet takes {tokens} prompt tokens but the manifest says {chunks} chunk(s) of {CHUNK_LENGTH}; "
            "convert the model again."
        )
    return chunks


def _load_tokenizers(folder: Path, manifest: Manifest) -> list:
    """The transformers tokenizer folders the converter copied, else Apple's vocab.json + merges.txt."""
    from transformers import CLIPTokenizer

    wanted = 2 if manifest.family == "sdxl" else 1
    tokenizers = []
    try:
        for name in manifest.tokenizers[:wanted]:
            tokenizers.append(CLIPTokenizer.from_pretrained(folder / name, local_files_only=True))
        if not tokenizers:
            vocab = read_json(confined_file(folder, folder / "vocab.json"))  # no link out of the folder
            merges = parse_merges(read_text(confined_file(folder, folder / "merges.txt")))
            tokenizers.append(CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77))
    except (OSError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ModelCorruptError(
            f"The tokenizer in {folder} could not be loaded ({exc}); convert the model again."
        ) from exc
    while len(tokenizers) < wanted:  # SDXL with one tokenizer folder: both encoders share its vocabulary
        tokenizers.append(tokenizers[0])
    return tokenizers


def _scheduler_config(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelCorruptError(f"{path} cannot be read ({exc}); convert the model again.") from exc
