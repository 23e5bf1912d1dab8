"""Command line: ``lcm-desktop [gui|generate|models|doctor|train-style|serve] …`` — the only code that reads ``argv``.

One parser, one place that turns an error into a line on stderr and an exit code: every failure is
one line and exit 2, a cancel is exit 130.  An unexpected exception (a bug) is one line too, naming the
log file that holds its traceback; ``--debug`` or ``LCM_DESKTOP_DEBUG=1`` shows the traceback instead.
A reader that stops early (``models list | head -1``) ends the command quietly (exit 141, as SIGPIPE).
Each command lives in its own module with
``add_parser(subparsers)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

from ..core.errors import Cancelled, InvalidRequestError, LcmError
from ..core.paths import AppPaths
from ..core.text import printable
from . import doctor, generate, gui, models, serve, train

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED, EXIT_BROKEN_PIPE = 0, 2, 130, 141
DEBUG_ENV = "LCM_DESKTOP_DEBUG"
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
    parser.add_argument("--debug", action="store_true",
                        help=f"show a traceback on an unexpected error (or {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command")
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        _say(f"error: {exc}.")
        return EXIT_ERROR
    configure(args.verbose, network=args.command == "models")
    command = COMMANDS[args.command or "gui"]
    cancelled = command.cancelled_message(args) if hasattr(command, "cancelled_message") else "cancelled"
    return guarded(command, lambda: command.run(args), cancelled=cancelled, debug=args.debug)


def guarded(command, call: Callable[[], int], *, cancelled: str = "cancelled", debug: bool = False) -> int:
    """Run a command; every error becomes one line on stderr and its exit code (the only such mapping).

    ``cancelled``: what Ctrl-C prints; ``command.FLAGS`` names request fields as the command's flags;
    ``debug`` (or ``LCM_DESKTOP_DEBUG=1``): an unexpected exception propagates with its traceback."""
    try:
        code = call()
        sys.stdout.flush()  # a closed pipe shows here, inside the guard, not in Python's exit-time flush
        return code
    except KeyboardInterrupt:
        _say(cancelled)
        return EXIT_CANCELLED
    except Cancelled as exc:
        _say(f"cancelled: {exc.user_message}")
        return EXIT_CANCELLED
    except InvalidRequestError as exc:
        flag = getattr(command, "FLAGS", {}).get(exc.field, exc.field)
        _say(f"error: `{flag}` must be {exc.allowed}, got {exc.value!r}.")
        return EXIT_ERROR
    except LcmError as exc:
        _say(f"error: {exc.user_message}")
        return EXIT_ERROR
    except BrokenPipeError:
        return _broken_pipe()
    except Exception as exc:  # a bug: one line and the log file, unless debugging
        if debug or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        where = _log_unexpected(exc)
        _say(f"error: unexpected {type(exc).__name__}: {str(exc).strip()[:200] or 'no details'} — please report "
             f"it; {where} (rerun with --debug to see the traceback).")
        return EXIT_ERROR


def _say(line: str) -> None:
    """One line on stderr, control characters from files escaped (it cannot clear the terminal or add a line)."""
    try:
        print(printable(line), file=sys.stderr)
    except (BrokenPipeError, ValueError):
        pass  # stderr is gone: nothing left to tell


def _broken_pipe() -> int:
    """stdout's reader stopped (``| head``): end quietly, and keep Python's final flush from complaining."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def _log_unexpected(exc: BaseException) -> str:
    """Append the traceback to the log file; say where it went (or that it could not be written)."""
    try:
        log_file = AppPaths.default().log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a", encoding="utf-8") as out:
            out.write(f"{datetime.now(UTC).isoformat(timespec='seconds')} CLI {' '.join(sys.argv[1:])[:500]}\n")
            out.write("".join(traceback.format_exception(exc)))
        return f"details are in {log_file}"
    except OSError as err:
        return f"the details could not be logged ({err.strerror or err})"


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
