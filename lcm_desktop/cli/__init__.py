"""Command line: ``lcm-desktop [gui|generate|models|doctor|train-style|serve] …`` — the only code that reads ``argv``.

One parser, one place that turns an error into a line on stderr and an exit code: every failure is
one line and exit 2, a cancel is exit 130.  Each command lives in its own module with
``add_parser(subparsers)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from ..core.errors import Cancelled, InvalidRequestError, LcmError
from . import doctor, generate, gui, models, serve, train

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 2, 130
COMMANDS = {"gui": gui, "generate": generate, "models": models, "doctor": doctor, "train-style": train,
            "serve": serve}


class UsageError(Exception):
    """A command line argparse rejects (turned into one line, exit 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (exit 2) like every other error, with where to look."""

    def error(self, message: str):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lcm-desktop", description="On-device image generation with LCMs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command")
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}.", file=sys.stderr)
        return EXIT_ERROR
    configure(args.verbose, network=args.command == "models")
    command = COMMANDS[args.command or "gui"]
    cancelled = command.cancelled_message(args) if hasattr(command, "cancelled_message") else "cancelled"
    return guarded(command, lambda: command.run(args), cancelled=cancelled)


def guarded(command, call: Callable[[], int], *, cancelled: str = "cancelled") -> int:
    """Run a command; every error becomes one line on stderr and its exit code (the only such mapping).

    ``cancelled``: what Ctrl-C prints; ``command.FLAGS`` names request fields as the command's flags."""
    try:
        return call()
    except KeyboardInterrupt:
        print(cancelled, file=sys.stderr)
        return EXIT_CANCELLED
    except Cancelled as exc:
        print(f"cancelled: {exc.user_message}", file=sys.stderr)
        return EXIT_CANCELLED
    except InvalidRequestError as exc:
        flag = getattr(command, "FLAGS", {}).get(exc.field, exc.field)
        print(f"error: `{flag}` must be {exc.allowed}, got {exc.value!r}.", file=sys.stderr)
        return EXIT_ERROR
    except LcmError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return EXIT_ERROR


def configure(verbose: bool, *, network: bool = False) -> None:
    """Logging, and the libraries' environment: offline unless the command downloads (`models pull`)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not network:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # generation never touches the network
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if not verbose:
        for name in ("diffusers", "transformers", "huggingface_hub", "coremltools"):
            logging.getLogger(name).setLevel(logging.ERROR)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
