"""``lcm-desktop generate PROMPT …``: make images and save them as PNGs that carry their settings.

Everything that can be checked is checked before a model loads, in the words of the flags the user
typed; then: resolve ``--model`` → describe it → choose the backend → engine → write the PNGs.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..core.errors import BackendUnavailableError, InvalidRequestError, OutputError
from ..core.mask import INPAINT_STRENGTH
from ..core.model_info import ModelInfo, describe_model
from ..core.paths import AppPaths, builtin_model_path
from ..core.presets import PRESETS, default_steps, preset_named, resolve_sampler
from ..core.request import DEFAULT_STRENGTH
from ..core.text import printable
from ..engine.backends import CHOICES
from .control_args import FLAGS as CONTROL_FLAGS
from .control_args import add_control_arguments, control_specs

COMPUTE_UNITS = ("ALL",) + tuple(c.compute_units for c in CHOICES if c.compute_units)
DTYPES = ("auto", "float32", "fp32", "float16", "fp16", "bfloat16", "bf16")
FALLBACK_PROMPT = "a red circle"  # for a model that ships no example prompt
# The request's field names as the flags the user typed them (used by the CLI's error mapping).
FLAGS = {"prompt": "PROMPT", "negative_prompt": "--negative", "steps": "--steps", "guidance_scale": "--guidance",
         "width": "--width", "height": "--height", "seed": "--seed", "batch_size": "--batch",
         "tiny_decoder": "--fast-decode", "init_image": "--init-image", "strength": "--strength", "loras": "--lora",
         "mask": "--mask", "mask_blur": "--mask-blur", "inpaint_area": "--inpaint-area",
         "inpaint_padding": "--inpaint-padding", "outpaint": "--outpaint",
         "sampler": "--sampler", "eta": "--eta", **CONTROL_FLAGS}


def add_parser(sub) -> argparse.ArgumentParser:
    gen = sub.add_parser("generate", help="make images from a prompt and save them as PNGs")
    gen.add_argument("prompt", nargs="?", default=None, help="what to draw (default: the model's example prompt)")
    gen.add_argument(
        "--model", help="catalog id, imported or converted model name, or a model folder (default: built-in)"
    )
    gen.add_argument("--negative", default="", help="negative prompt (used by models with classifier-free guidance)")
    gen.add_argument(
        "--steps", type=int, default=None, help="denoising steps (1–8 typical, up to 50; default: the model's)"
    )
    gen.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the model's)")
    gen.add_argument("--width", type=int, default=None, help="pixels, multiple of 8 (default: the model's native)")
    gen.add_argument("--height", type=int, default=None, help="pixels, multiple of 8 (default: the model's native)")
    gen.add_argument("--seed", type=int, default=None, help="0 … 4294967295 (default: random, printed)")
    gen.add_argument("--batch", type=int, default=1, help="images to make (seeds seed, seed+1, …)")
    gen.add_argument("--init-image", type=Path, default=None, metavar="PATH",
                     help="start from this picture (any size: scaled to cover the output size, centre-cropped)")
    gen.add_argument("--strength", type=float, default=None,
                     help=f"with --init-image: how far from it, 0 < S <= 1 (default {DEFAULT_STRENGTH:g}); "
                          "--steps denoising steps always run")
    gen.add_argument("--mask", type=Path, default=None, metavar="PATH",
                     help="with --init-image: repaint where this picture is white, keep where it is black "
                          f"(default --strength {INPAINT_STRENGTH:g})")
    gen.add_argument("--mask-blur", type=int, default=4, metavar="PX", help="soften the mask's edge (default 4)")
    gen.add_argument("--inpaint-area", default="whole", choices=["whole", "masked"],
                     help="whole: the picture fitted to the output size (default); masked: only a box around the "
                          "mask, generated at the output size and pasted back into the picture at its own size")
    gen.add_argument("--inpaint-padding", type=int, default=32, metavar="PX",
                     help="with --inpaint-area masked: pixels around the mask's box (default 32)")
    gen.add_argument("--keep-generated", action="store_true",
                     help="with --mask: keep the model's pixels everywhere (default: the original outside the mask)")
    gen.add_argument("--outpaint", default=None, metavar="SIDE:PX,…",
                     help="with --init-image: extend the canvas, e.g. left:128,top:64 (multiples of 8), and paint "
                          "the new border")
    gen.add_argument("--lora", action="append", default=[], metavar="NAME[:WEIGHT]",
                     help="apply an installed style LoRA at WEIGHT (default 1); repeat for several "
                          "(`lcm-desktop models styles` lists them)")
    gen.add_argument("--sampler", default=None, metavar="NAME",
                     help=f"sampler preset: {', '.join(p.name for p in PRESETS)} "
                          "(aliases: pcm, turbo, sdxs, lightning; "
                          "default: the model's own, e.g. tcd for a TCD folder)")
    gen.add_argument("--eta", type=float, default=None,
                     help="TCD samplers' eta (gamma), 0 … 1 (default: 0.3 for tcd, 1.0 for hyper-sd)")
    add_control_arguments(gen)
    gen.add_argument("--out", type=Path, default=None, help="output folder, or a .png file name")
    gen.add_argument("--overwrite", action="store_true", help="replace the file named by --out if it exists")
    gen.add_argument("--backend", choices=["auto", "torch", "coreml"], default="auto",
                     help="auto (default: by the model's kind), torch (a diffusers folder) or coreml "
                          "(a folder made by `python -m convert`, macOS)")
    gen.add_argument("--compute-units", default="ALL", choices=COMPUTE_UNITS, metavar="UNITS",
                     help=f"Core ML: {', '.join(COMPUTE_UNITS)} (REFERENCE: the packages run op by op in numpy, "
                          "on any OS: slow, for checking a conversion)")
    gen.add_argument("--device", default=None, type=_device, help="PyTorch: auto (default), mps, cuda[:N] or cpu")
    gen.add_argument("--dtype", default=None, choices=DTYPES, metavar="DTYPE",
                     help="auto (default), float32, float16 or bfloat16")
    gen.add_argument("--tiny-decoder", type=Path, default=None, help="AutoencoderTiny folder or catalog id (taesd)")
    gen.add_argument("--fast-decode", action="store_true", help="decode the final image with the tiny decoder")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    return gen


def run(args: argparse.Namespace) -> int:
    from ..core.request import GenerationRequest, fit_steps_to_strength
    from ..engine.diffusers_quiet import quiet_libraries
    from ..engine.engine import Engine
    from ..outputs import save_images

    # Validate everything that can be checked before loading anything heavy, in the user's words.
    if args.strength is not None and args.init_image is None:
        raise InvalidRequestError("--strength", args.strength, "used with --init-image")
    inpaint = _inpaint(args)
    default_strength = DEFAULT_STRENGTH if inpaint is None else INPAINT_STRENGTH
    request = GenerationRequest(
        prompt=args.prompt or "",
        negative_prompt=args.negative,
        steps=4 if args.steps is None else args.steps,
        guidance_scale=args.guidance,
        width=args.width,
        height=args.height,
        seed=args.seed,
        batch_size=args.batch,
        tiny_decoder=args.fast_decode,
        init_image=args.init_image,
        strength=1.0 if args.init_image is None else default_strength if args.strength is None else args.strength,
        loras=tuple(parse_lora(text) for text in args.lora),
        inpaint=inpaint,
        sampler=args.sampler,
        eta=args.eta,
    )
    if args.init_image is not None:
        from ..core.init_image import check_image_file

        check_image_file(args.init_image)  # a missing or non-picture file: one line, before the model loads
    if inpaint is not None:
        inpaint.check_file()
    info = _model(args)
    request = resolve_sampler(request, info.preset, info.name)  # a sampler it cannot run: one line, before loading
    steps = default_steps(info, preset_named(request.sampler)) if args.steps is None else args.steps
    request = replace(request, prompt=args.prompt if args.prompt is not None else
                      info.defaults.example_prompt or FALLBACK_PROMPT, steps=steps,
                      controls=control_specs(args, info))
    if request.is_img2img:  # the one strength → steps rule (core.request), per sampler, as the app applies it
        steps, note = fit_steps_to_strength(request.steps, request.strength, info.original_steps, request.sampler)
        request = replace(request, steps=steps)
        if note:
            print(f"note: {note}", file=sys.stderr)
    loader = _loader(args, info)
    resolve_control = None
    if request.controls:
        from ..models.resolve import resolve_control

        if args.backend == "coreml":
            raise InvalidRequestError("--control", str(args.control[0]), "left out with a Core ML model (structure "
                                      "controls run on the PyTorch backend)")
        for spec in request.controls:
            resolve_control(spec.model)  # an unknown control model: one line, before the model loads
    targets, on_existing = _output_paths(args.out, request, overwrite=args.overwrite)

    styles = None
    if request.styles:  # --lora and the prompt's <lora:name:weight> tags
        from ..models.styles import StyleStore

        if args.backend == "coreml":
            raise InvalidRequestError("--lora", request.styles[0].name, "left out with a Core ML model (styles are "
                                      "baked in at conversion: python -m convert … --lora FILE:WEIGHT)")
        styles = StyleStore().path_of
        for lora in request.styles:
            styles(lora.name)  # an unknown style: one line, before the model loads
    quiet_libraries()
    engine = Engine(loader, styles=styles, controls=resolve_control)
    engine.load()
    bar = None if args.quiet else _ProgressBar(request.steps)
    try:
        result = engine.generate(request, on_step=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    if result.truncation_note:
        print(printable(f"warning: {result.truncation_note}"), file=sys.stderr)
    written = save_images(result, targets, model=info.name, model_hash=engine.model_hash, fix="choose another --out",
                          on_existing=on_existing)
    for path in written:
        print(path)
    print(printable(_summary(result, engine.load_seconds, len(written))), file=sys.stderr)  # names from files
    return 0


def _summary(result, load_seconds: float, count: int) -> str:
    req, t = result.request, result.timings
    note = (
        " (negative prompt ignored: this model has no classifier-free guidance)"
        if result.negative_prompt_ignored
        else ""
    )
    start = f", from {req.init_image.name} at strength {req.strength:g}" if req.is_img2img else ""
    if req.inpaint is not None:
        start += ", " + ", ".join(f"{k.lower()} {v}" for k, v in req.inpaint.parameters().items())
    start += "".join(f", control {c.model_label} × {c.scale:g}" for c in req.controls)
    sampler = f"{req.sampler}" + (f" eta {req.eta:g}" if req.eta is not None else "")
    return (f"{count} image(s) {req.width}x{req.height}{start}, {req.steps} steps {sampler}, "
            f"guidance {req.guidance_scale:g}, "
            f"seed {req.seed} | load {load_seconds:.2f}s, encode {t.encode:.2f}s, {t.per_step:.2f}s/step, "
            f"decode {t.decode:.2f}s, total {t.total + load_seconds:.2f}s on {result.backend}{note}")


def _inpaint(args: argparse.Namespace):
    """``--mask``, ``--outpaint`` and their options → ``core.mask.Inpaint`` (``None`` without a mask)."""
    from ..core.mask import Inpaint, Outpaint

    if args.mask is None and args.outpaint is None:
        for flag, value, default in (("--mask-blur", args.mask_blur, 4), ("--inpaint-area", args.inpaint_area, "whole"),
                                     ("--inpaint-padding", args.inpaint_padding, 32),
                                     ("--keep-generated", args.keep_generated, False)):
            if value != default:
                raise InvalidRequestError(flag, value, "used with --mask or --outpaint")
        return None
    if args.init_image is None:
        flag = "--mask" if args.mask is not None else "--outpaint"
        raise InvalidRequestError(flag, str(args.mask or args.outpaint), "used with --init-image (the picture to "
                                  "repaint)")
    return Inpaint(mask=args.mask, blur=args.mask_blur, area=args.inpaint_area, padding=args.inpaint_padding,
                   keep_generated=args.keep_generated,
                   outpaint=Outpaint.parse(args.outpaint) if args.outpaint is not None else None)


def parse_lora(text: str):
    """``--lora NAME[:WEIGHT]`` → ``LoraWeight`` (weight 1 when left out)."""
    from ..core.request import LoraWeight

    name, colon, weight = text.rpartition(":")
    if not colon:
        return LoraWeight(text.strip(), 1.0)
    try:
        value = float(weight)
    except ValueError:
        raise InvalidRequestError("loras", text, "NAME or NAME:WEIGHT with a number for WEIGHT") from None
    return LoraWeight(name.strip(), value)


def _device(text: str) -> str:
    """``--device``: auto, cpu, mps, cuda or cuda:N (whether it exists here is checked before loading)."""
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, mps, cuda or cuda:N, got {text!r}")
    return text


def _model(args: argparse.Namespace) -> ModelInfo:
    """``--model`` resolved and described; the backend chosen for it (``auto``) and checked against it."""
    from ..models.resolve import resolve_model

    info = describe_model(resolve_model(args.model) if args.model else builtin_model_path())
    if args.backend == "auto":
        args.backend = "coreml" if info.kind.is_coreml else "torch"
    if args.backend == "coreml" and sys.platform != "darwin" and args.compute_units != "REFERENCE":
        raise BackendUnavailableError(
            f"Core ML needs macOS (this is {sys.platform}); run the model's diffusers folder with --backend torch "
            "(or check a converted folder, slowly, with --compute-units REFERENCE)."
        )
    if (args.backend == "coreml") != info.kind.is_coreml:
        if info.kind.is_coreml:
            raise InvalidRequestError("--backend", args.backend, f"coreml for {info.name}, a converted Core ML model")
        raise InvalidRequestError("--backend", args.backend, f"torch for {info.name}, a diffusers model (convert it "
                                  "with `python -m convert` to run it on Core ML)")
    return info


def _loader(args: argparse.Namespace, info: ModelInfo):
    """The engine's loader for the chosen backend, with every flag checked against it (before any load)."""
    from ..core.model_folder import inspect_model_folder
    from ..engine.loaders import CoreMLLoader, TorchLoader

    if args.backend == "coreml":
        for flag, value in (("--device", args.device), ("--dtype", args.dtype), ("--tiny-decoder", args.tiny_decoder)):
            if value is not None:
                raise InvalidRequestError(flag, str(value), "left out with --backend coreml (use --compute-units)")
        if args.fast_decode and not info.has_tiny_decoder:
            raise InvalidRequestError("--fast-decode", True, "used with a Core ML model converted with --tiny-decoder")
        return CoreMLLoader(info.path, compute_units=args.compute_units)
    if args.compute_units != "ALL":
        raise InvalidRequestError("--compute-units", args.compute_units, "left out with --backend torch (use --device)")
    tiny_decoder = None
    if args.tiny_decoder is not None:  # a folder, or a catalog id such as taesd
        from ..models.resolve import resolve_model

        tiny_decoder = resolve_model(str(args.tiny_decoder))
    elif args.fast_decode:
        raise InvalidRequestError(
            "--fast-decode", True, "used with --tiny-decoder (an AutoencoderTiny folder or taesd)"
        )
    inspect_model_folder(info.path)  # weights present, safetensors only, not truncated: before any work
    return TorchLoader(info.path, device=args.device, dtype=args.dtype, tiny_decoder=tiny_decoder)


def _output_paths(out: Path | None, request, *, overwrite: bool):
    """(A function (index, seed) → path, what to do when that file exists); the folder is made now, so a
    bad --out fails before any work.  Stale temp files of crashed saves in that folder are removed."""
    from ..outputs import OnExisting, prepare_folder

    stamp = time.strftime("%Y%m%d-%H%M%S")
    explicit = out is not None and out.suffix.lower() == ".png"
    if explicit:
        folder, stem = out.parent, out.stem
        single = request.batch_size == 1

        def name(index: int, seed: int) -> Path:
            return folder / (f"{stem}.png" if single else f"{stem}-{index + 1}.png")
    else:
        folder = out if out is not None else AppPaths.default().output

        def name(index: int, seed: int) -> Path:
            return folder / f"{stamp}-{seed}.png"
    prepare_folder(folder, "choose another --out")
    if not explicit:
        return name, OnExisting.NUMBER
    for index in range(request.batch_size):  # early advice only: the save itself creates each file exclusively
        path = name(index, 0)
        if path.is_dir():
            raise OutputError(f"--out {path} is a folder, not an image file; choose another --out.")
        if path.exists() and not overwrite:
            raise OutputError(f"{path} already exists; pass --overwrite to replace it or choose another --out.")
    return name, (OnExisting.REPLACE if overwrite else OnExisting.FAIL)


class _ProgressBar:
    """A one-line progress bar on stderr, with it/s; drawn at the first step, so an error found before
    any step (e.g. too few schedule points for the strength) stays the only line printed."""

    def __init__(self, total: int):
        self._total = total
        self._bar = None

    def update(self, progress) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self._total, unit="step", file=sys.stderr, mininterval=0, desc="generating")
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
