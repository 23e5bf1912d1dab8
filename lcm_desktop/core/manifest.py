"""Schema of a converted Core ML model folder: ``manifest.json``.

Written last by the converter (``python -m convert``), read first by the Core ML backend.  It
says what each ``.mlpackage`` expects and returns (names, shapes, dtypes, in Apple's
ml-stable-diffusion layout), how the model was converted (attention, precision, palettization,
size), where it came from, and how close it came to PyTorch.  Plain data: no torch, no
coremltools.

A converted folder::

    manifest.json
    TextEncoder.mlpackage  [TextEncoder2.mlpackage]  Unet.mlpackage  VAEDecoder.mlpackage  [VAEEncoder.mlpackage]
    [TinyDecoder.mlpackage]
    vocab.json  merges.txt            Apple's tokenizer layout
    tokenizer/  [tokenizer_2/]        the transformers tokenizer files
    scheduler/scheduler_config.json
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lcm_desktop.core.atomic import publish_file
from lcm_desktop.core.errors import ModelFormatError, ModelIncompleteError
from lcm_desktop.core.model_files import check_confined_tree, read_json
from lcm_desktop.core.presets import PRESETS, find_preset

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

# Apple's component names (ml-stable-diffusion's Resources/ layout), each saved as <name>.mlpackage.
TEXT_ENCODER = "TextEncoder"
TEXT_ENCODER_2 = "TextEncoder2"
UNET = "Unet"
VAE_DECODER = "VAEDecoder"
VAE_ENCODER = "VAEEncoder"
TINY_DECODER = "TinyDecoder"  # ours (Apple has none): AutoencoderTiny (TAESD) for previews and fast decodes
COMPONENT_NAMES = (TEXT_ENCODER, TEXT_ENCODER_2, UNET, VAE_DECODER, VAE_ENCODER, TINY_DECODER)

ATTENTIONS = ("split_einsum", "original")
DTYPES = ("float32", "float16", "int32")
FAMILIES = ("sd", "sdxl")
PALETTIZE_BITS = (4, 6, 8)
MAX_PROMPT_CHUNKS = 8  # 600 prompt tokens: the UNet's cross-attention grows with it


@dataclass(frozen=True)
class TensorSpec:
    """One named model input or output: ``shape`` is fixed (Core ML models here are not flexible)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    def describe(self) -> str:
        return f"{self.name} {self.dtype}[{', '.join(str(d) for d in self.shape)}]"


@dataclass(frozen=True)
class ParityResult:
    """One comparison of a converted component's output against PyTorch.

    ``check``: ``"traced_vs_eager"`` (fp32 wrapper vs the diffusers module, any platform),
    ``"reference_vs_torch"`` (the saved package run by the reference executor vs PyTorch, any
    platform) or ``"coreml_vs_torch"`` (Core ML prediction vs PyTorch, macOS only).  ``metric``:
    ``"relative_error"`` (lower is better) or ``"psnr_db"`` (higher is better).
    """

    check: str
    output: str
    metric: str
    value: float
    threshold: float

    @property
    def passed(self) -> bool:
        if self.metric == "psnr_db":
            return self.value >= self.threshold
        return self.value <= self.threshold


@dataclass(frozen=True)
class ComponentSpec:
    name: str  # one of COMPONENT_NAMES
    file: str  # relative to the folder, e.g. "Unet.mlpackage"
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    size_bytes: int = 0
    sha256: str = ""  # of the package's files: keys the compiled-model cache
    parity: tuple[ParityResult, ...] = ()
    precision: str = "float16"  # compute precision; SDXL's VAE stays float32 (it overflows in fp16)

    def input(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.inputs if spec.name == name), None)

    def output(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.outputs if spec.name == name), None)


@dataclass(frozen=True)
class SourceInfo:
    path: str
    repo_id: str | None = None
    revision: str | None = None
    content_hash: str = ""  # sha256 over the source's config and weight files
    lcm_lora: str | None = None  # path of a fused LCM-LoRA
    lcm_lora_hash: str | None = None
    tiny_decoder: str | None = None  # path of the AutoencoderTiny folder converted as TinyDecoder
    tiny_decoder_hash: str | None = None


@dataclass(frozen=True)
class BakedLora:
    """A style LoRA fused into the weights at conversion (``python -m convert … --lora FILE:WEIGHT``)."""

    name: str  # the file's stem, as the app names styles
    hash: str  # AUTOMATIC1111's short hash (core.lora_file.lora_hash), for ``Lora hashes``
    weight: float
    file: str = ""  # the path it was read from


@dataclass(frozen=True)
class Manifest:
    name: str
    family: str  # "sd" | "sdxl"
    source: SourceInfo
    components: tuple[ComponentSpec, ...]
    attention: str  # the Unet's attention: "split_einsum" (Neural Engine) | "original" (GPU)
    precision: str  # compute precision of the UNet and text encoders: "float16" (each component says its own)
    palettization_bits: int | None
    width: int  # the one image size the latent shapes were fixed for
    height: int
    batch_size: int  # Unet rows per call (1 for LCMs; 2 for classic CFG)
    in_channels: int
    vae_scale_factor: int  # pixels per latent cell
    vae_scaling_factor: float  # latents = scaling_factor * vae_latents
    time_cond_proj_dim: int | None  # guidance embedding size (LCM); None for LCM-LoRA/plain UNets
    sample_size: int  # the source UNet's native latent side
    force_zeros_for_empty_prompt: bool = True
    vae_latents_mean: tuple[float, ...] | None = None  # some VAEs: latents = (vae_latents − mean) · scaling / std
    vae_latents_std: tuple[float, ...] | None = None
    tiny_decoder_scaling_factor: float = 1.0  # AutoencoderTiny's own (1.0 for TAESD)
    scheduler_config: str = "scheduler/scheduler_config.json"  # "": none shipped (Apple layout): LCM defaults
    tokenizers: tuple[str, ...] = ("tokenizer",)
    # How many 75-token prompt chunks the Unet's encoder_hidden_states hold (77 tokens each); shorter prompts
    # are padded with empty-prompt chunks, longer ones refused.  None: converted before chunks existed
    # (77 tokens; a longer prompt is cut at a word, see engine/prompt_fit.py).
    max_prompt_chunks: int | None = None
    converter_version: str = ""
    coremltools_version: str = ""
    torch_version: str = ""
    minimum_deployment_target: str = "macOS14"
    created: str = ""
    schema_version: int = SCHEMA_VERSION
    notes: tuple[str, ...] = field(default=())
    loras: tuple[BakedLora, ...] = ()  # style LoRAs baked into the UNet and text encoders, in fusing order
    # The sampler preset it was made for (core.presets: lcm, tcd, hyper-sd, …), read by the converter from the
    # source folder; None: converted before presets existed (read from scheduler_config, else LCM).
    sampler: str | None = None

    def component(self, name: str) -> ComponentSpec | None:
        return next((c for c in self.components if c.name == name), None)

    def require(self, name: str) -> ComponentSpec:
        spec = self.component(name)
        if spec is None:
            have = ", ".join(c.name for c in self.components)
            raise ModelFormatError(
                f"This Core ML model has no {name} (it has {have}); convert it again with that component."
            )
        return spec

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        return (self.batch_size, self.in_channels, self.height // self.vae_scale_factor,
                self.width // self.vae_scale_factor)

    # -- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for comp in data["components"]:
            for parity in comp["parity"]:
                parity["passed"] = ParityResult(**parity).passed
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ModelFormatError(
                f"manifest.json has schema version {version!r}; this app reads version {SCHEMA_VERSION}: "
                "convert the model again with this version."
            )
        try:
            components = tuple(_component_from_dict(c) for c in data["components"])
            source = SourceInfo(**data["source"])
            fields = {k: v for k, v in data.items() if k not in ("components", "source", "loras")}
            fields["loras"] = tuple(BakedLora(**lora) for lora in data.get("loras", ()))
            for key in ("tokenizers", "notes", "vae_latents_mean", "vae_latents_std"):
                if fields.get(key) is not None:
                    fields[key] = tuple(fields[key])
            return cls(components=components, source=source, **fields)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"manifest.json is malformed ({exc}); convert the model again.") from exc


def _component_from_dict(data: dict[str, Any]) -> ComponentSpec:
    data = dict(data)
    data["inputs"] = tuple(TensorSpec(**t) for t in data["inputs"])
    data["outputs"] = tuple(TensorSpec(**t) for t in data["outputs"])
    data["parity"] = tuple(
        ParityResult(**{k: v for k, v in p.items() if k != "passed"}) for p in data.get("parity", ())
    )
    return ComponentSpec(**data)


def validate_manifest(manifest: Manifest, folder: Path | None = None) -> None:
    """Check the manifest's own rules and, given its folder, that every file it names is there."""

    def bad(message: str) -> ModelFormatError:
        return ModelFormatError(f"manifest.json: {message}; convert the model again.")

    if manifest.family not in FAMILIES:
        raise bad(f"family must be one of {FAMILIES}, got {manifest.family!r}")
    if manifest.attention not in ATTENTIONS:
        raise bad(f"attention must be one of {ATTENTIONS}, got {manifest.attention!r}")
    if manifest.palettization_bits not in (None, *PALETTIZE_BITS):
        raise bad(f"palettization_bits must be one of {PALETTIZE_BITS} or null, got {manifest.palettization_bits!r}")
    chunks = manifest.max_prompt_chunks
    if chunks is not None and (isinstance(chunks, bool) or not isinstance(chunks, int)
                               or not 1 <= chunks <= MAX_PROMPT_CHUNKS):
        raise bad(f"max_prompt_chunks must be a whole number from 1 to {MAX_PROMPT_CHUNKS} or null, got {chunks!r}")
    if manifest.width % manifest.vae_scale_factor or manifest.height % manifest.vae_scale_factor:
        raise bad(f"size {manifest.width}x{manifest.height} is not a multiple of {manifest.vae_scale_factor}")
    if manifest.sampler is not None and find_preset(manifest.sampler) is None:
        raise bad(f"sampler must name a sampler preset ({', '.join(p.name for p in PRESETS)}), "
                  f"got {manifest.sampler!r}")
    names = [c.name for c in manifest.components]
    for name in names:
        if name not in COMPONENT_NAMES:
            raise bad(f"unknown component {name!r} (known: {', '.join(COMPONENT_NAMES)})")
    if len(set(names)) != len(names):
        raise bad(f"a component is listed twice: {names}")
    for comp in manifest.components:
        for spec in (*comp.inputs, *comp.outputs):
            if spec.dtype not in DTYPES:
                raise bad(f"{comp.name}.{spec.name} has dtype {spec.dtype!r}; expected one of {DTYPES}")
            if not spec.shape or any(d <= 0 for d in spec.shape):
                raise bad(f"{comp.name}.{spec.name} has shape {spec.shape}")
        if comp.precision not in ("float16", "float32"):
            raise bad(f"{comp.name} has precision {comp.precision!r}; expected float16 or float32")
        failed = [p for p in comp.parity if not p.passed]
        if failed:
            p = failed[0]
            raise bad(f"{comp.name}.{p.output} failed its {p.check} check ({p.metric} {p.value:.4g} vs {p.threshold})")
    if folder is not None:
        folder = Path(folder)
        for rel in [c.file for c in manifest.components] + [manifest.scheduler_config or "."]:
            if not (folder / rel).exists():
                raise ModelIncompleteError(f"{folder / rel} is missing; the Core ML model folder is incomplete.")
        named = [c.file for c in manifest.components] + [t for t in manifest.tokenizers if (folder / t).exists()]
        for rel in named + ([manifest.scheduler_config] if manifest.scheduler_config else []):
            check_confined_tree(folder, rel)  # nothing named may lead outside, or be a FIFO or device


def load_manifest(folder: Path) -> Manifest:
    """Read and validate ``folder/manifest.json``."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not path.exists():
        raise ModelFormatError(
            f"{folder} has no {MANIFEST_NAME}: it is not a converted Core ML model "
            "(convert it with `python -m convert`)."
        )
    data = read_json(path)  # regular file, bounded, a JSON object: else one line naming the file
    try:
        manifest = Manifest.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(
            f"{path} is not a manifest this app can read ({exc!r}); convert the model again."
        ) from exc
    validate_manifest(manifest, folder)
    return manifest


def save_manifest(manifest: Manifest, folder: Path) -> Path:
    """Write ``folder/manifest.json`` atomically (temp file + rename)."""
    validate_manifest(manifest)
    data = (json.dumps(manifest.to_dict(), indent=2) + "\n").encode("utf-8")
    return publish_file(Path(folder) / MANIFEST_NAME, lambda handle: handle.write(data), replace=True)
