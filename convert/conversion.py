"""``run(options)``: one conversion from start to finish, all or nothing.

Everything is written into a hidden temporary folder beside ``--out``; ``manifest.json`` is
written last, and the folder is renamed into place only when every component converted and
validated.  A failure or an interrupt removes the temporary folder, so nothing half-written
ever looks like a model (and a folder without a manifest is refused by the backend anyway).
"""

from __future__ import annotations

import gc
import json
import logging
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import torch

from convert import validate
from convert.components import Job, image_size, install_attention, plan_jobs
from convert.compress import palettize
from convert.export import capture, import_coremltools, run_captured, to_mlpackage
from convert.options import ConvertOptions
from convert.source import (
    content_hash,
    copy_tokenizers_and_scheduler,
    inspect_source,
    load_pipeline,
    source_info,
    weights_bytes,
)
from lcm_desktop.core.atomic import publish_dir
from lcm_desktop.core.errors import ConversionError, LcmError
from lcm_desktop.core.manifest import MANIFEST_NAME, ComponentSpec, Manifest, TensorSpec, load_manifest, save_manifest
from lcm_desktop.core.model_info import describe_model
from lcm_desktop.core.presets import preset_named

log = logging.getLogger(__name__)

CONVERTER_VERSION = "1"
DISK_MARGIN_BYTES = 256 * 2**20
Progress = Callable[[str], None]


def run(options: ConvertOptions, progress: Progress | None = None) -> Manifest:
    """Convert ``options.source`` into ``options.out``; returns the manifest written there."""
    say = progress or (lambda line: log.info("%s", line))
    started = time.perf_counter()
    ct = import_coremltools()
    out = options.out
    if out.exists() or out.is_symlink():
        if not options.force:
            raise ConversionError(f"{out} already exists; choose another --out or pass --force to replace it.")
        check_replaceable(out)
    source = inspect_source(options.source, options.components)
    if options.lcm_lora is not None:
        from convert.lora import resolve_lora_file

        options = replace(options, lcm_lora=resolve_lora_file(options.lcm_lora))  # refuse a bad LoRA before any work
    if options.loras:
        from convert.lora import check_styles

        check_styles(options.loras, source.family, source.path.name)
    check_disk_space(source, options)

    made: list[Manifest] = []
    # built in a hidden sibling; an earlier conversion (--force) is moved aside and put back if the rename fails
    publish_dir(out, lambda work: made.append(_convert_into(work, source, options, ct.__version__, say)),
                replace=options.force)
    manifest = made[0]
    sizes = ", ".join(f"{c.name} {_mb(c.size_bytes)}" for c in manifest.components)
    total = sum(c.size_bytes for c in manifest.components)
    say(f"done in {time.perf_counter() - started:.1f} s: {sizes}; total {_mb(total)} in {out}")
    return manifest


def check_disk_space(source, options: ConvertOptions) -> None:
    """Fail early when the output's disk cannot hold the packages (fp16 ≈ the source's fp32 bytes / 2)."""
    folders = ["unet"] if "unet" in options.components else []
    if "text_encoder" in options.components:
        folders += list(source.text_encoders)
    if "vae_decoder" in options.components or "vae_encoder" in options.components:
        folders.append("vae")
    needed = weights_bytes(source, tuple(folders))  # fp16 packages + a palettized copy fit in fp32's bytes
    needed += DISK_MARGIN_BYTES
    probe = options.out.parent if options.out.parent.exists() else Path(options.out.anchor or ".")
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise ConversionError(
            f"not enough disk space in {probe}: the conversion needs about {_mb(needed)} and {_mb(free)} is free."
        )


def _convert_into(work: Path, source, options: ConvertOptions, ct_version: str, say: Progress) -> Manifest:
    t = time.perf_counter()
    pipe = load_pipeline(source, options.components)
    say(f"loaded {source.path.name} ({source.family}) in {time.perf_counter() - t:.1f} s")
    if options.lcm_lora:
        from convert.lora import fuse_lcm_lora

        t = time.perf_counter()
        changed = fuse_lcm_lora(pipe, options.lcm_lora)
        say(f"fused LCM-LoRA {options.lcm_lora.name} into {changed} UNet tensors in {time.perf_counter() - t:.1f} s")
    baked = ()
    if options.loras:
        from convert.lora import fuse_styles

        t = time.perf_counter()
        baked = fuse_styles(pipe, options.loras, source.path.name)
        styles = ", ".join(f"{lora.name} at {lora.weight:g}" for lora in baked)
        say(f"baked styles {styles} in {time.perf_counter() - t:.1f} s")
    taesd = None
    if options.tiny_decoder:
        from convert.source import load_tiny_decoder

        taesd = load_tiny_decoder(options.tiny_decoder)
    jobs = plan_jobs(pipe, source, options, taesd)
    specs = []
    for index, job in enumerate(jobs, start=1):
        specs.append(convert_component(job, work, options, say, f"[{index}/{len(jobs)}]"))
    tokenizers = copy_tokenizers_and_scheduler(source, work)
    width, height = image_size(source, options)
    cfg = source.unet_config
    notes = []
    if not validate.coreml_available():
        notes.append(f"coreml_vs_torch PSNR not measured: no Core ML runtime on {platform.system()}")
    manifest = Manifest(
        name=options.out.name,
        family=source.family,
        source=source_info(source.path, options.lcm_lora, options.tiny_decoder),
        components=tuple(specs),
        attention=options.attention,
        precision="float16",
        palettization_bits=options.palettize,
        width=width,
        height=height,
        batch_size=options.batch_size,
        in_channels=int(cfg.get("in_channels", 4)),
        vae_scale_factor=source.vae_scale_factor,
        vae_scaling_factor=float(source.vae_config.get("scaling_factor", 0.18215)),
        time_cond_proj_dim=cfg.get("time_cond_proj_dim"),
        sample_size=int(cfg.get("sample_size", 64)),
        force_zeros_for_empty_prompt=bool(source.model_index.get("force_zeros_for_empty_prompt", True)),
        vae_latents_mean=_floats(source.vae_config.get("latents_mean")),
        vae_latents_std=_floats(source.vae_config.get("latents_std")),
        tiny_decoder_scaling_factor=float(taesd.config.scaling_factor) if taesd is not None else 1.0,
        tokenizers=tokenizers,
        max_prompt_chunks=options.max_prompt_chunks,
        converter_version=CONVERTER_VERSION,
        coremltools_version=ct_version,
        torch_version=torch.__version__,
        minimum_deployment_target=options.min_target,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        notes=tuple(notes),
        loras=baked,
        sampler=options.sampler or describe_model(source.path).preset.name,  # --sampler, else the source's
    )
    # The app's recommendations file: the one size this conversion runs at (also for non-square sizes), and
    # what the source recommends (steps, guidance, its example prompt), so the Core ML model starts the same.
    defaults = describe_model(source.path).defaults
    recommended = {"width": width, "height": height, "steps": defaults.steps, "guidance_scale": defaults.guidance_scale}
    if options.sampler is not None:  # the named preset's own steps (and its record: core.model_info reads it)
        recommended.update(sampler=options.sampler, steps=preset_named(options.sampler).default_steps)
    if options.lcm_lora is not None:  # a plain UNet with an LCM-LoRA fused in: guidance 1 means no CFG batch
        recommended["guidance_scale"] = 1.0
    if defaults.example_prompt:
        recommended["example_prompt"] = defaults.example_prompt
    (work / "lcm_desktop.json").write_text(json.dumps(recommended, indent=2) + "\n", encoding="utf-8")
    save_manifest(manifest, work)
    return manifest


def convert_component(job: Job, work: Path, options: ConvertOptions, say: Progress, tag: str) -> ComponentSpec:
    """Capture, check against eager, convert, palettize, check the saved I/O, execute the saved package
    (reference executor; unless ``options.verify`` is off) and, on a Mac, Core ML's outputs."""
    generator = torch.Generator().manual_seed(0)
    inputs = job.wrapper.example_inputs(generator)
    with torch.no_grad():
        reference = job.eager(inputs)
    if job.attention_module is not None:
        install_attention([job], options.attention)
    t = time.perf_counter()
    graph = capture(job.wrapper, inputs, job.route)
    parity = validate.check_traced_vs_eager(job.name, job.wrapper.output_names, run_captured(graph, inputs), reference)
    worst = max(p.value for p in parity)
    say(
        f"{tag} {job.name}: captured ({job.route}) in {time.perf_counter() - t:.1f} s, "
        f"relative error vs eager {worst:.2e}"
    )

    input_specs = [TensorSpec(n, tuple(x.shape)) for n, x in zip(job.wrapper.input_names, inputs, strict=True)]
    output_specs = tuple(
        TensorSpec(n, tuple(y.shape)) for n, y in zip(job.wrapper.output_names, reference, strict=True)
    )
    path = work / f"{job.name}.mlpackage"
    t = time.perf_counter()
    to_mlpackage(graph, input_specs, job.wrapper.output_names, path, options.min_target, job.precision)
    del graph
    gc.collect()
    bits = "fp16" if job.precision == "float16" else "fp32"
    say(f"{tag} {job.name}: converted to an {bits} ML Program in {time.perf_counter() - t:.1f} s ({_mb(_size(path))})")
    if options.palettize:
        t = time.perf_counter()
        fp16_size = _size(path)
        compressed = work / f"{job.name}.palettized.mlpackage"
        palettize(path, options.palettize, compressed)
        shutil.rmtree(path)
        compressed.rename(path)
        say(f"{tag} {job.name}: palettized to {options.palettize} bits in {time.perf_counter() - t:.1f} s "
            f"({_mb(fp16_size)} → {_mb(_size(path))})")

    spec = ComponentSpec(job.name, path.name, tuple(input_specs), output_specs)
    validate.check_package_io(path, spec)
    if options.verify:
        t = time.perf_counter()
        checked = validate.check_reference_vs_torch(job.name, path, input_specs, job.wrapper.output_names, inputs,
                                                    reference, validate.min_psnr_db(options.palettize))
        parity += checked
        say(
            f"{tag} {job.name}: executed the saved package, vs PyTorch {_psnrs(checked)} "
            f"in {time.perf_counter() - t:.1f} s"
        )
    if validate.coreml_available():
        t = time.perf_counter()
        checked = validate.check_coreml_vs_torch(job.name, path, input_specs, job.wrapper.output_names, inputs,
                                                 reference, threshold=validate.min_psnr_db(options.palettize))
        parity += checked
        say(f"{tag} {job.name}: Core ML vs PyTorch {_psnrs(checked)} in {time.perf_counter() - t:.1f} s")
    return ComponentSpec(job.name, path.name, tuple(input_specs), output_specs, _size(path), content_hash(path),
                         tuple(parity), job.precision)


def check_replaceable(out: Path) -> None:
    """``--force`` replaces only an earlier conversion (a real folder with our manifest), never a user's folder."""
    refusal = (f"{out} is not a model folder made by `python -m convert` ({{why}}); --force only replaces an "
               "earlier conversion, so choose another --out.")
    if out.is_symlink() or not out.is_dir():
        raise ConversionError(refusal.format(why="it is a link" if out.is_symlink() else "it is a file"))
    try:
        load_manifest(out)
    except (LcmError, KeyError, TypeError, ValueError) as exc:  # a foreign manifest.json can be any JSON
        raise ConversionError(refusal.format(why=f"no readable {MANIFEST_NAME}")) from exc


def _psnrs(results) -> str:
    return ", ".join(f"{p.output} {p.value:.1f} dB" for p in results)


def _floats(values) -> tuple[float, ...] | None:
    return tuple(float(v) for v in values) if values else None


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _mb(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"

