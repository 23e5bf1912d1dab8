"""``lcm-desktop train-style FOLDER --name NAME …``: teach a model a style from a folder of pictures (LCF).

Everything that can be checked is checked before the model loads (the name, the numbers, the model); the run
itself is ``training.trainer.train``.  One progress line with the ETA on stderr; Ctrl-C stops after the current
step, keeps a checkpoint and says how to resume; the style's path is printed on stdout.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from ..core.errors import TrainingCancelled
from ..core.paths import builtin_model_path
from ..training.progress import done_line, note_line, step_line

FLAGS = {"name": "--name", "steps": "--steps", "rank": "--rank", "lr": "--lr", "batch": "--batch", "size": "--size",
         "method": "--method", "loss": "--loss", "checkpoint_every": "--checkpoint-every",
         "preview_every": "--preview-every", "text_encoder": "--text-encoder"}


def cancelled_message(args: argparse.Namespace) -> str:
    return "cancelled before training started; nothing was written."


def add_parser(sub) -> argparse.ArgumentParser:
    cmd = sub.add_parser("train-style", help="teach a model a style from a folder of pictures (a LoRA, by LCF)")
    cmd.add_argument("folder", type=Path, help="pictures, with captions in .txt files beside them (kohya) or none")
    cmd.add_argument("--model", default=None, help="catalog id, imported model name or folder (default: built-in)")
    cmd.add_argument("--name", required=True, help="the style's name: letters, digits, . _ - and spaces, ≤ 64")
    cmd.add_argument("--steps", type=int, default=1000, help="training steps (default 1000)")
    cmd.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    cmd.add_argument("--lr", type=float, default=None,
                     help="AdamW learning rate (default: 1e-3 for a small model such as the built-in one, 1e-4 for "
                          "SD1.5-class)")
    cmd.add_argument("--batch", type=int, default=4, help="pictures per step (default 4)")
    cmd.add_argument("--size", type=int, default=None, help="training size in pixels (default: the model's native)")
    cmd.add_argument("--trigger", default=None, help="the word that calls up the style (used by --caption)")
    cmd.add_argument("--caption", default=None, metavar="TEMPLATE",
                     help='caption for pictures without a .txt file, {} = the trigger word: "a {} photo"')
    cmd.add_argument("--method", choices=["lcf", "plain"], default="lcf",
                     help="lcf (default: keeps the model a few-step LCM) or plain (noise-prediction fine-tune)")
    cmd.add_argument("--loss", choices=["l2", "huber"], default="l2", help="LCF distance (default l2)")
    cmd.add_argument("--ema", type=float, default=0.95,
                     help="decay μ of the LCF target network θ⁻ (default 0.95; 0: the current weights, stop-grad)")
    cmd.add_argument("--curriculum", action=argparse.BooleanOptionalAction, default=True,
                     help="LCF: coarse-to-fine skips (200, 100, 40, then the LCM's 20 timesteps), learns faster "
                          "(default: on)")
    cmd.add_argument("--full", action="store_true",
                     help="train the whole UNet (small models) into a new model instead of a LoRA style")
    cmd.add_argument("--text-encoder", action=argparse.BooleanOptionalAction, default=None,
                     help="a LoRA on the text encoder too: for a word the model has never learned (default: when "
                          "the captions hold a word the tokenizer spells letter by letter)")
    cmd.add_argument("--resume", action="store_true", help="continue the last checkpoint of this --name")
    cmd.add_argument("--force", action="store_true", help="replace a style of this name; start over")
    cmd.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default 100)")
    cmd.add_argument("--preview-every", type=int, default=0, help="steps between preview images (default 0: none)")
    cmd.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    cmd.add_argument("--device", default=None, help="auto (default: mps, cuda, else cpu), mps, cuda[:N] or cpu")
    cmd.add_argument("--progress", choices=["text", "json"], default="text",
                     help="text (default: one line with the ETA on stderr) or json (training.progress lines on "
                          "stdout, for the app)")
    cmd.add_argument("--preview-dir", type=Path, default=None,
                     help="with --progress json: write each preview there as <step>.png")
    return cmd


def run(args: argparse.Namespace) -> int:
    from ..models.resolve import resolve_model
    from ..training.trainer import TrainConfig, train

    config = TrainConfig(
        folder=args.folder, model=resolve_model(args.model) if args.model else builtin_model_path(),
        name=args.name, steps=args.steps, rank=args.rank, lr=args.lr, batch=args.batch, size=args.size,
        trigger=args.trigger, caption=args.caption, method=args.method, loss=args.loss, full=args.full,
        text_encoder=args.text_encoder, ema=args.ema, curriculum=args.curriculum,
        resume=args.resume, force=args.force, checkpoint_every=args.checkpoint_every,
        preview_every=args.preview_every, seed=args.seed, device=args.device,
    )
    cancel = threading.Event()
    line = _JsonLines(args.preview_dir) if args.progress == "json" else _ProgressLine()
    with _CtrlCSets(cancel):
        try:
            result = train(config, on_progress=line.update, cancel=cancel)
        except TrainingCancelled as exc:
            line.close()
            raise TrainingCancelled(f"training of {args.name!r} stopped at step {exc.step} of {exc.total}; the "
                                    "checkpoint is kept: run the same command with --resume to continue.",
                                    exc.step, exc.total) from exc
    line.close()
    if args.progress == "json":
        for note in result.notes:
            print(note_line(note), flush=True)
        print(done_line(result.output), flush=True)
        return 0
    for note in result.notes:
        print(note, file=sys.stderr)
    print(result.output)
    print(f"trained {result.steps} steps ({result.data}) in {result.seconds:.0f} s"
          f"{f', resumed from step {result.resumed_from}' if result.resumed_from else ''}; "
          f"final loss {result.final_loss:.4f}", file=sys.stderr)
    return 0


class _CtrlCSets:
    """While inside: the first Ctrl-C (or SIGTERM: the app's Cancel) sets ``event`` (the run stops between steps,
    keeping its checkpoint); a second Ctrl-C interrupts."""

    def __init__(self, event: threading.Event):
        self.event = event
        self.previous = None
        self.previous_term = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
            self.previous_term = signal.signal(signal.SIGTERM, self._handle_term)
        return self

    def _handle(self, signum, frame):
        self.event.set()
        signal.signal(signal.SIGINT, self.previous or signal.default_int_handler)

    def _handle_term(self, signum, frame):
        self.event.set()

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            signal.signal(signal.SIGTERM, self.previous_term or signal.SIG_DFL)
        return False


class _JsonLines:
    """``--progress json``: one ``training.progress`` line per step on stdout; previews as PNGs in ``folder``."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def update(self, p) -> None:
        preview = None
        if p.preview is not None and self.folder is not None:
            preview = self.folder / f"{p.step}.png"
            part = preview.with_name(f".{preview.name}.part")
            p.preview.save(part, format="PNG")
            os.replace(part, preview)  # the app never reads a half-written preview
        print(step_line(p.step, p.total, p.loss, p.eta_seconds, preview), flush=True)

    def close(self) -> None:
        pass


class _ProgressLine:
    """``step 120/1000 · loss 0.0123 · 0.45 s/step · ETA 6m 36s`` on stderr: redrawn on a terminal, else every 10 %."""

    def __init__(self):
        self.tty = sys.stderr.isatty()
        self.drawn = False

    def update(self, p) -> None:
        text = (f"step {p.step}/{p.total} · loss {p.loss:.4f} · {p.seconds_per_step:.2f} s/step · "
                f"ETA {_duration(p.eta_seconds)}")
        if self.tty:
            print(f"\r{text}\033[K", end="", file=sys.stderr, flush=True)
            self.drawn = True
        elif p.step == p.total or p.step % max(1, p.total // 10) == 0:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.drawn:
            print(file=sys.stderr)
            self.drawn = False


def _duration(seconds: float) -> str:
    seconds = int(round(max(0.0, seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
