"""``lcm-desktop [gui] [--model M] [--self-test]``: open the app (the default with no command)."""

from __future__ import annotations

import argparse
import os
import sys

from ..core.errors import LcmError

HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc")


class NoDisplayError(LcmError):
    """The app needs a screen and there is none."""


def add_parser(sub) -> argparse.ArgumentParser:
    gui = sub.add_parser("gui", help="open the app (the default with no command)")
    gui.add_argument("--model", help="catalog id, imported or converted model name, or a model folder to open")
    gui.add_argument("--self-test", action="store_true", help="open, generate one image, exit 0 (smoke test)")
    return gui


def run(args: argparse.Namespace) -> int:
    check_display()
    model = None
    if getattr(args, "model", None):
        from ..models.resolve import resolve_model

        model = resolve_model(args.model)
    from ..gui.app import main as gui_main

    return gui_main(model, self_test=getattr(args, "self_test", False))


def check_display(environ=os.environ, platform: str = sys.platform) -> None:
    """On Linux/BSD, a missing X11/Wayland display is one line here, not an abort inside Qt."""
    if platform in ("darwin", "win32") or environ.get("QT_QPA_PLATFORM", "").split(":")[0] in HEADLESS_PLATFORMS:
        return
    if not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        raise NoDisplayError(
            "No display: the app needs a screen (DISPLAY or WAYLAND_DISPLAY is unset); make images with "
            "`lcm-desktop generate \"a prompt\"` instead."
        )
