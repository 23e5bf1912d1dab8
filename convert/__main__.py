"""``python -m convert SOURCE --out DIR [options]``: a diffusers LCM → a Core ML model folder.

Prints one progress line per phase on stdout, and the total time and sizes at the end.  Any
failure prints one line on stderr and exits with status 2, leaving nothing half-written.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import warnings
from pathlib import Path

from lcm_desktop.core.errors import LcmError


def build_parser() -> argparse.ArgumentParser:
    from convert.options import COMPONENT_CHOICES, TARGETS  # light: no torch

    parser = argparse.ArgumentParser(
        prog="python -m convert",
        description="Convert a local diffusers LCM (or a base model with an LCM-LoRA fused in) to Core ML.",
    )
    parser.add_argument("source", type=Path, help="local diffusers model folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder (must not exist, unless --force)")
    parser.add_argument("--lcm-lora", type=Path, help="LCM-LoRA .safetensors file (or its folder) to fuse in first")
    parser.add_argument("--lora", action="append", default=[], metavar="FILE[:WEIGHT]",
                        help="style LoRA .safetensors to bake in at WEIGHT (default 1), UNet and text encoders; "
                             "repeatable")
    parser.add_argument("--sampler", metavar="NAME",
                        help="the sampler preset the model runs (lcm, tcd, hyper-sd, ddim-trailing, …; default: the "
                             "source folder's); name it when a distillation LoRA such as TCD is fused or baked")
    parser.add_argument("--attention", choices=("split_einsum", "original"), default="split_einsum",
                        help="split_einsum: Neural Engine (default); original: GPU")
    parser.add_argument("--size", help="image size WxH the shapes are fixed for (default: the model's native size)")
    parser.add_argument("--palettize", type=int, choices=(4, 6, 8), help="k-means weight palettization bits")
    parser.add_argument("--components", default="all",
                        help=f"comma-separated subset of {','.join(COMPONENT_CHOICES)} (default: all)")
    parser.add_argument("--min-target", default="macOS14", choices=TARGETS,
                        help="minimum deployment target (default macOS14)")
    parser.add_argument("--batch-size", type=int, choices=(1, 2), default=1,
                        help="UNet rows per call: 1 for LCMs (default), 2 for classic classifier-free guidance")
    parser.add_argument(
        "--tiny-decoder",
        type=Path,
        help="AutoencoderTiny folder (e.g. madebyollin/taesd) to convert too, for previews and fast decodes",
    )
    parser.add_argument("--max-prompt-chunks", type=int, default=1, metavar="K",
                        help="longest prompt the UNet takes, in 75-token chunks (default 1 = 75 tokens, Apple's "
                             "layout; 3 = 225 tokens); shorter prompts are padded with empty-prompt chunks")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip executing each saved package against PyTorch (faster; nothing checks the packages)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    return parser


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        # Before torch/diffusers/transformers/coremltools are imported: their progress bars and notices.
        for name in ("TQDM_DISABLE",):
            os.environ.setdefault(name, "1")
        for name in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY"):
            os.environ.setdefault(name, "error")
        warnings.filterwarnings("ignore")
        for noisy in ("coremltools", "diffusers", "transformers", "torch"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    # A cancelled conversion (the app terminates its child process) cleans up as Ctrl-C does.
    previous = (
        signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        from convert.conversion import run
        from convert.options import ConvertOptions, parse_components, parse_lora, parse_size

        options = ConvertOptions(
            source=args.source, out=args.out, lcm_lora=args.lcm_lora, attention=args.attention,
            size=parse_size(args.size) if args.size else None, palettize=args.palettize,
            components=parse_components(args.components), min_target=args.min_target,
            batch_size=args.batch_size, force=args.force, tiny_decoder=args.tiny_decoder,
            verify=not args.no_verify, max_prompt_chunks=args.max_prompt_chunks,
            loras=tuple(parse_lora(text) for text in args.lora), sampler=args.sampler,
        )
        run(options, progress=lambda line: print(line, flush=True))
    except LcmError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: conversion interrupted; nothing was written.", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
