"""Command line: ``lcm-desktop generate …`` (and, in later releases, the app and model tools).

The only module that reads ``argv``.  Every failure is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from .core.errors import GenerationCancelled, LcmError, OutputError
from .core.paths import AppPaths, resource_path

EXIT_ERROR = 2
EXIT_CANCELLED = 130
DEFAULT_PROMPT = "a large yellow circle on a green background, top left"


def builtin_model_path() -> Path:
    return resource_path("models", "lcm-demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lcm-desktop", description="On-device image generation with LCMs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command")

    gui = sub.add_parser("gui", help="open the app (the default with no command)")
    gui.add_argument("--model", help="diffusers model folder to open")
    gui.add_argument("--self-test", action="store_true", help="open, generate one image, exit 0 (smoke test)")

    from .models.commands import add_models_parser

    add_models_parser(sub)

    doc = sub.add_parser("doctor", help="report system, backends and model timings (paste it into an issue)")
    doc.add_argument("--model", help="model folder to time (default: the built-in demo model)")
    doc.add_argument("--no-generate", action="store_true", help="skip the timed generations")
    doc.add_argument("--json", action="store_true", help="machine-readable output")

    gen = sub.add_parser("generate", help="make images from a prompt and save them as PNGs")
    gen.add_argument("prompt", nargs="?", default=DEFAULT_PROMPT, help="what to draw")
    gen.add_argument("--model", help="catalog id, imported model name or diffusers folder (default: built-in demo)")
    gen.add_argument("--negative", default="", help="negative prompt (used by models with classifier-free guidance)")
    gen.add_argument("--steps", type=int, default=4, help="denoising steps (1–8 typical, up to 50)")
    gen.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the model's)")
    gen.add_argument("--width", type=int, default=None, help="pixels, multiple of 8 (default: the model's native)")
    gen.add_argument("--height", type=int, default=None, help="pixels, multiple of 8 (default: the model's native)")
    gen.add_argument("--seed", type=int, default=None, help="0 … 4294967295 (default: random, printed)")
    gen.add_argument("--batch", type=int, default=1, help="images to make (seeds seed, seed+1, …)")
    gen.add_argument("--out", type=Path, default=None, help="output folder, or a .png file name")
    gen.add_argument("--backend", choices=["torch", "coreml"], default="torch",
                     help="torch (a diffusers folder) or coreml (a folder made by `python -m convert`, macOS)")
    gen.add_argument("--compute-units", default="ALL",
                     help="Core ML: ALL, CPU_AND_NE, CPU_AND_GPU or CPU_ONLY; REFERENCE runs the packages on the "
                          "reference executor (any OS, slow: for checking a conversion)")
    gen.add_argument("--device", default=None, help="PyTorch: auto (default), mps, cuda or cpu")
    gen.add_argument("--dtype", default=None, help="auto (default), float32, float16 or bfloat16")
    gen.add_argument("--tiny-decoder", type=Path, default=None, help="AutoencoderTiny folder or catalog id (taesd)")
    gen.add_argument("--fast-decode", action="store_true", help="decode the final image with the tiny decoder")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, args.command)
    try:
        if args.command in (None, "gui"):
            from .gui.app import main as gui_main

            return gui_main(getattr(args, "model", None), self_test=getattr(args, "self_test", False))
        if args.command == "generate":
            return _generate(args)
        if args.command == "models":
            from .models.commands import run_models_command

            return run_models_command(args)
        if args.command == "doctor":
            from .doctor import run_doctor

            model = Path(args.model).expanduser() if args.model else builtin_model_path()
            report = run_doctor(model, generate=not args.no_generate)
            print(report.to_json() if args.json else report.to_text(), end="")
            return 0
    except GenerationCancelled:
        print("cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except LcmError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return EXIT_ERROR
    parser.error(f"unknown command {args.command}")
    return EXIT_ERROR


def _configure_logging(verbose: bool, command: str | None = None) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if command != "models":  # `models pull` is the one command that may use the network
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # generation never touches the network
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if not verbose:
        for name in ("diffusers", "transformers", "huggingface_hub", "coremltools"):
            logging.getLogger(name).setLevel(logging.ERROR)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _generate(args: argparse.Namespace) -> int:
    from .core.request import GenerationRequest
    from .outputs import save_images

    # Validate everything cheap before loading anything heavy.
    request = GenerationRequest(
        prompt=args.prompt, negative_prompt=args.negative, steps=args.steps, guidance_scale=args.guidance,
        width=args.width, height=args.height, seed=args.seed, batch_size=args.batch, tiny_decoder=args.fast_decode,
    )
    if args.tiny_decoder is not None:  # a folder, or a catalog id such as taesd
        from .models.commands import resolve_model

        args.tiny_decoder = resolve_model(str(args.tiny_decoder))
    if args.model and args.backend == "torch":
        from .models.commands import resolve_model

        model_path = resolve_model(args.model)
    else:
        model_path = Path(args.model).expanduser() if args.model else builtin_model_path()
    from .core.model_folder import inspect_model_folder, model_hash

    if args.backend == "torch":
        folder = inspect_model_folder(model_path)
        model_path, model_name, digest = folder.path, folder.name, model_hash(folder)
    else:
        from .engine.coreml_layout import read_coreml_manifest

        manifest = read_coreml_manifest(model_path)  # ours, or Apple's layout
        model_name, digest = manifest.name, None
    targets = _output_paths(args.out, request)  # checks the destination before the work

    from .engine.diffusers_quiet import quiet_libraries
    from .engine.engine import Engine

    quiet_libraries()
    engine = Engine(model_path, backend=args.backend, compute_units=args.compute_units, device=args.device,
                    dtype=args.dtype, tiny_decoder=args.tiny_decoder)
    engine.load()
    bar = None if args.quiet else _ProgressBar(request.steps)
    result = engine.generate(request, on_step=bar.update if bar else None)
    if bar:
        bar.close()
    req = result.request
    written = save_images(result, targets, model=model_name, model_hash=digest, fix="choose another --out")
    for path in written:
        print(path)
    t = result.timings
    per_step = sum(t["steps"]) / max(len(t["steps"]), 1)
    note = " (negative prompt ignored: this model has no classifier-free guidance)" if result.negative_prompt_ignored else ""
    print(
        f"{len(written)} image(s) {req.width}x{req.height}, {req.steps} steps, guidance {req.guidance_scale:g}, "
        f"seed {req.seed} | load {engine.load_seconds:.2f}s, encode {t['encode']:.2f}s, "
        f"{per_step:.2f}s/step, decode {t['decode']:.2f}s, total {t['total'] + engine.load_seconds:.2f}s "
        f"on {result.backend}{note}",
        file=sys.stderr,
    )
    return 0


def _output_paths(out: Path | None, request):
    """A function (index, seed) → path; the folder is made now, so a bad --out fails before any work."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if out is not None and out.suffix.lower() == ".png":
        folder, stem = out.parent, out.stem
        single = request.batch_size == 1

        def name(index: int, seed: int) -> Path:
            return folder / (f"{stem}.png" if single else f"{stem}-{index + 1}.png")
    else:
        folder = out if out is not None else AppPaths.default().output

        def name(index: int, seed: int) -> Path:
            return folder / f"{stamp}-{seed}.png"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the output folder {folder} ({exc.strerror or exc}); choose another --out.") from exc
    if not os.access(folder, os.W_OK):
        raise OutputError(f"The output folder {folder} is not writable; choose another --out.")
    return name


class _ProgressBar:
    """A one-line progress bar on stderr, with it/s."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="step", file=sys.stderr, mininterval=0, desc="generating")

    def update(self, progress) -> None:
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
