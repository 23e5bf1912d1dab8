"""Reading Core ML model folders: our manifest, or Apple ml-stable-diffusion's layout of ``.mlpackage`` files.

Apple's published Core ML Stable Diffusion models carry no manifest; their inputs and outputs are
read from the packages themselves (coremltools' spec reader), so they load in our backend too.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import BackendUnavailableError, ModelCorruptError, ModelFormatError
from .manifest import (
    MANIFEST_NAME,
    TEXT_ENCODER,
    TEXT_ENCODER_2,
    UNET,
    VAE_DECODER,
    VAE_ENCODER,
    ComponentSpec,
    Manifest,
    SourceInfo,
    TensorSpec,
    load_manifest,
    validate_manifest,
)

_APPLE_PACKAGE = re.compile(
    r"(?:^|_)(text_encoder_2|text_encoder|unet|unet_chunk\d|vae_decoder|vae_encoder)\.mlpackage$"
)
_APPLE_NAMES = {"text_encoder": TEXT_ENCODER, "text_encoder_2": TEXT_ENCODER_2, "unet": UNET,
                "vae_decoder": VAE_DECODER, "vae_encoder": VAE_ENCODER}
_APPLE_DTYPES = {65568: "float32", 65552: "float16", 131104: "int32"}
_APPLE_NOTE = "Apple ml-stable-diffusion layout (no manifest.json): inputs and outputs read from the packages"


def is_apple_layout(folder: Path) -> bool:
    """Whether ``folder`` holds ``.mlpackage`` files named as Apple's ml-stable-diffusion names them."""
    try:
        return any(_APPLE_PACKAGE.search(p.name) for p in folder.glob("*.mlpackage"))
    except OSError:
        return False


def _read_package_io(package: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    try:
        import coremltools
    except ImportError as exc:
        raise BackendUnavailableError(
            "Reading a Core ML model without a manifest needs coremltools; "
            "install it with pip install 'lcm-desktop[coreml]'."
        ) from exc
    try:
        spec = coremltools.utils.load_spec(str(package))
    except Exception as exc:  # protobuf/IO errors of many kinds: all mean "unreadable package"
        raise ModelCorruptError(f"{package.name} cannot be read ({exc}); download or convert it again.") from exc

    def specs(features) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(f.name, tuple(f.type.multiArrayType.shape),
                                _APPLE_DTYPES.get(f.type.multiArrayType.dataType, "float32")) for f in features)

    return specs(spec.description.input), specs(spec.description.output)


def manifest_from_apple_layout(folder: Path) -> Manifest | None:
    """A manifest for a folder of ``.mlpackage`` files named as Apple's ml-stable-diffusion names them
    (``…_text_encoder.mlpackage``, ``…_unet.mlpackage``, … or ``Unet.mlpackage``, …) with ``vocab.json`` and
    ``merges.txt``; ``None`` when the folder holds no such package.  Shapes come from the packages; what
    they do not say is Apple's convention: VAE scaling 0.18215 (SDXL 0.13025), 8× latents, LCM scheduler.
    """
    found: dict[str, Path] = {}
    for package in sorted(folder.glob("*.mlpackage")):
        match = _APPLE_PACKAGE.search(package.name)
        name = _APPLE_NAMES.get(match.group(1)) if match else package.stem
        if match and match.group(1).startswith("unet_chunk"):
            raise ModelFormatError(
                f"{folder} holds a chunked UNet ({package.name}); convert the model unchunked for this app."
            )
        if name in _APPLE_NAMES.values():
            found[name] = package
    if not found:
        return None
    for file in ("vocab.json", "merges.txt"):
        if not (folder / file).is_file():
            raise ModelFormatError(f"{folder} has Core ML models but no {file}; add the model's tokenizer files.")
    components = []
    for name, package in found.items():
        inputs, outputs = _read_package_io(package)
        components.append(ComponentSpec(name, package.name, inputs, outputs))
    unet = next((c for c in components if c.name == UNET), None)
    if unet is None or unet.input("sample") is None:
        raise ModelFormatError(
            f"{folder} has no Unet package with a 'sample' input; it is not a Stable Diffusion model."
        )
    b, c, h, w = unet.input("sample").shape
    sdxl = unet.input("text_embeds") is not None
    cond = unet.input("timestep_cond")
    scheduler = folder / "scheduler" / "scheduler_config.json"
    return Manifest(
        name=folder.name, family="sdxl" if sdxl else "sd", source=SourceInfo(path=str(folder)),
        components=tuple(components), attention="split_einsum" if "split_einsum" in str(folder) else "original",
        precision="float16", palettization_bits=None, width=w * 8, height=h * 8, batch_size=b, in_channels=c,
        vae_scale_factor=8, vae_scaling_factor=0.13025 if sdxl else 0.18215,
        time_cond_proj_dim=cond.shape[1] if cond is not None else None, sample_size=h,
        scheduler_config="scheduler/scheduler_config.json" if scheduler.is_file() else "", tokenizers=(),
        notes=(_APPLE_NOTE,),
    )


def read_coreml_manifest(folder: Path) -> Manifest:
    """The folder's manifest.json, or one read from Apple-layout packages; a clear error otherwise."""
    if (folder / MANIFEST_NAME).is_file():
        return load_manifest(folder)
    manifest = manifest_from_apple_layout(folder)
    if manifest is None:
        raise ModelFormatError(
            f"{folder} has no {MANIFEST_NAME} and no Apple-layout .mlpackage files: it is not a converted Core ML "
            "model (convert it with `python -m convert`)."
        )
    validate_manifest(manifest, folder)
    return manifest
