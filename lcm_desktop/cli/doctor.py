"""``lcm-desktop doctor [--model M] [--json]``: a report a user can paste into an issue."""

from __future__ import annotations

import argparse

from ..core.text import printable


def add_parser(sub) -> argparse.ArgumentParser:
    doc = sub.add_parser("doctor", help="report system, backends and model timings (paste it into an issue)")
    doc.add_argument("--model", help="model to time: catalog id, model name or folder (default: the built-in model)")
    doc.add_argument("--no-generate", action="store_true", help="skip the timed generations")
    doc.add_argument("--json", action="store_true", help="machine-readable output")
    return doc


def run(args: argparse.Namespace) -> int:
    from ..core.paths import builtin_model_path
    from ..doctor import run_doctor
    from ..models.resolve import resolve_model

    report = run_doctor(resolve_model(args.model) if args.model else builtin_model_path(),
                        generate=not args.no_generate)
    print(report.to_json() if args.json else printable(report.to_text(), newlines=True), end="")
    return 0
