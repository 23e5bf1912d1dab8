"""Checks a diffusers-format model folder before any weights are loaded (no torch needed).

A user pointing the app at the wrong thing gets one sentence saying what is wrong and what to do:
a missing folder, a folder that is not a diffusers model, a missing component, weights that are
only pickles (refused: loading them can run arbitrary code), or a truncated/corrupt .safetensors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelCorruptError, ModelFormatError, ModelNotFoundError, UnsafeModelError
from .model_files import check_regular, label, read_json, read_safetensors_header, read_text, repair_advice

PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
WEIGHT_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")
_TEXT_ENCODERS = frozenset({("transformers", "CLIPTextModel"), ("transformers", "CLIPTextModelWithProjection")})
_TOKENIZERS = frozenset({("transformers", "CLIPTokenizer"), ("transformers", "CLIPTokenizerFast")})
_SCHEDULERS = frozenset(("diffusers", name) for name in (  # only their configs are read, never their code
    "LCMScheduler", "TCDScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "PNDMScheduler",
    "DDIMScheduler", "DDPMScheduler", "LMSDiscreteScheduler", "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler", "KDPM2DiscreteScheduler", "KDPM2AncestralDiscreteScheduler",
    "HeunDiscreteScheduler", "UniPCMultistepScheduler", "DEISMultistepScheduler"))
# What the engine loads, per model_index.json key (nothing else is ever imported on a folder's say-so).
LOADED_CLASSES: dict[str, frozenset[tuple[str, str]]] = {
    "unet": frozenset({("diffusers", "UNet2DConditionModel")}),
    "vae": frozenset({("diffusers", "AutoencoderKL"), ("diffusers", "AutoencoderTiny")}),
    "text_encoder": _TEXT_ENCODERS, "text_encoder_2": _TEXT_ENCODERS,
    "tokenizer": _TOKENIZERS, "tokenizer_2": _TOKENIZERS,
    "scheduler": _SCHEDULERS,
}
# Listed by common Stable Diffusion pipelines, never loaded by this app.
KNOWN_CLASSES: dict[str, frozenset[tuple[str, str]]] = {
    **LOADED_CLASSES,
    "safety_checker": frozenset({("stable_diffusion", "StableDiffusionSafetyChecker")}),
    "feature_extractor": frozenset({("transformers", "CLIPImageProcessor"), ("transformers", "CLIPFeatureExtractor")}),
    "image_encoder": frozenset({("transformers", "CLIPVisionModelWithProjection")}),
}
PICKLE_HINT = (
    "pickle weights can run arbitrary code when loaded, so LCM Desktop only loads .safetensors; "
    "download the model's safetensors files or convert them with a trusted tool"
)


@dataclass(frozen=True)
class ModelFolder:
    path: Path
    family: str  # "sd" | "sdxl"
    pipeline_class: str
    components: dict[str, tuple[str | None, str | None]]  # name -> (library, class)
    weight_files: dict[str, list[Path]]  # component -> its safetensors files

    @property
    def name(self) -> str:
        return self.path.name


def inspect_model_folder(path: Path | str) -> ModelFolder:
    """Validate ``path`` as a diffusers text-to-image folder; raise an ``LcmError`` if it is not one.

    Every file the loaders will open is checked here first (regular file, parses, right shape), so a
    hostile or damaged folder fails with one sentence before torch, diffusers or transformers see it.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelNotFoundError(f"Model not found: {path} does not exist; pass a diffusers model folder.")
    if not path.is_dir():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafeModelError(f"Refusing to load {path.name}: {PICKLE_HINT}.")
        check_regular(path)
        raise ModelFormatError(
            f"{path.name} is a single file; import it first with `lcm-desktop models import {path}` "
            "or pass a diffusers model folder."
        )
    index_file = path / "model_index.json"
    if not index_file.exists():
        raise ModelFormatError(
            f"{path} is not a diffusers model folder (model_index.json is missing); "
            "pass the folder that contains model_index.json, unet/ and vae/."
        )
    index = read_json(index_file)
    components = component_classes(index, index_file)
    present = {k for k, (lib, cls) in components.items() if lib and cls}
    family = "sdxl" if "text_encoder_2" in present or "tokenizer_2" in present else "sd"
    required = ["unet", "vae", "text_encoder", "tokenizer", "scheduler"]
    if family == "sdxl":
        required = [c for c in required if c != "text_encoder"] + ["text_encoder_2", "tokenizer_2"]
    missing = [c for c in required if c not in present or not (path / c).is_dir()]
    if missing:
        raise ModelFormatError(
            f"{path.name} is missing {', '.join(missing)}; {repair_advice(index_file)} "
            "or pick a complete diffusers folder."
        )
    weights: dict[str, list[Path]] = {}
    for comp in sorted(present & set(LOADED_CLASSES)):
        folder = path / comp
        check_data_files(folder)
        if comp not in WEIGHT_COMPONENTS:
            continue
        safes = sorted(folder.glob("*.safetensors"))
        if not safes:
            pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
            if pickles:
                raise UnsafeModelError(f"Refusing to load {comp}/{pickles[0]} of {path.name}: {PICKLE_HINT}.")
            raise ModelFormatError(f"{path.name}/{comp} has no .safetensors weights; {repair_advice(folder)}.")
        if not (folder / "config.json").exists():
            raise ModelFormatError(f"{path.name}/{comp} has no config.json; {repair_advice(folder)}.")
        for file in safes:
            check_safetensors(file)
        weights[comp] = safes
    if not (path / "scheduler" / "scheduler_config.json").exists():
        raise ModelFormatError(f"{path.name}/scheduler has no scheduler_config.json; {repair_advice(index_file)}.")
    return ModelFolder(path, family, str(index.get("_class_name", "")), components, weights)


def component_classes(index: dict, index_file: Path) -> dict[str, tuple[str | None, str | None]]:
    """The ``[library, class]`` entries of a model_index.json, each one a class on the allow-list.

    diffusers turns these names into ``importlib.import_module(library)``: a folder naming
    ``["os", "system"]`` or a module shipped beside it would run code.  Anything not listed in
    ``KNOWN_CLASSES`` (the classes LCM Desktop loads, plus the few it knows to ignore) is refused.
    """
    where = label(index_file)
    if not isinstance(index.get("_class_name", ""), str):
        raise UnsafeModelError(
            f"Refusing {index_file.parent.name}: {where} names a custom pipeline "
            f"({index['_class_name']!r}), which would run code from the model folder; use a Stable Diffusion-class "
            "diffusers model."
        )
    components: dict[str, tuple[str | None, str | None]] = {}
    for key, value in index.items():
        if key.startswith("_") or not isinstance(value, list):
            continue
        if len(value) != 2 or not all(v is None or isinstance(v, str) for v in value):
            raise ModelCorruptError(
                f"{where} has {key}: {json.dumps(value)[:80]}, not a [library, class] pair; "
                f"{repair_advice(index_file)}."
            )
        library, cls = value
        if library is not None and cls is not None and (library, cls) not in KNOWN_CLASSES.get(key, ()):
            allowed = ", ".join(sorted(f"{lib}.{name}" for lib, name in KNOWN_CLASSES.get(key, ())))
            hint = f" — for {key}: {allowed}" if allowed else ""
            raise UnsafeModelError(
                f"Refusing {index_file.parent.name}: {where} names {library}.{cls} for {key}, and LCM Desktop only "
                f"loads known classes (never code named by a model folder){hint}."
            )
        components[key] = (library, cls)
    return components


def check_data_files(folder: Path) -> None:
    """Every file a loader may open in a component folder is a regular file; every JSON one parses."""
    for file in sorted(folder.iterdir()):
        suffix = file.suffix.lower()
        if suffix == ".json":
            read_json(file)
        elif suffix == ".txt":
            read_text(file)
        elif suffix in (".safetensors", ".model"):
            check_regular(file)


def check_safetensors(path: Path) -> None:
    """Cheap integrity check of a .safetensors file: a regular file, header parses and the data is all there."""
    read_safetensors_header(path)


def model_hash(model: ModelFolder) -> str:
    """A short, stable fingerprint of a model's weights (10 hex digits, like A1111's "Model hash").

    Hashing gigabytes on every load is too slow, so this hashes each safetensors header (names,
    shapes, dtypes, offsets) and file size — it changes whenever the weights file is replaced.
    """
    import hashlib

    digest = hashlib.sha256()
    for comp in sorted(model.weight_files):
        for file in model.weight_files[comp]:
            header = read_safetensors_header(file)
            digest.update(comp.encode() + header.raw + str(header.size).encode())
    return digest.hexdigest()[:10]
