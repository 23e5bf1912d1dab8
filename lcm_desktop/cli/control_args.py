"""``generate``'s structure-control flags, paired by order into ``ControlSpec``s.

    --control ring.png                                   # the built-in model: its own scribble control
    --control a.png --control-model control_v11p_sd15_scribble --control-preprocess scribble
    --control a.png --control-model CN1 --control b.png --control-model CN2 --control-scale 1 --control-scale 0.6

Each ``--control-model`` / ``--control-scale`` / ``--control-preprocess`` / ``--control-start`` / ``--control-end``
belongs to the ``--control`` before it (given before any ``--control``: to the first); once per control.  Left out,
a control takes the model's own control (its
``lcm_desktop.json`` ``control``: the built-in model ships ``lcm-demo-scribble``) and scale 1, preprocess ``none``
(the model's own control: its preprocess), start 0, end 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.control import ControlSpec, Preprocess
from ..core.errors import InvalidRequestError
from ..core.model_info import ModelInfo

FLAGS = {"control image": "--control", "control model": "--control-model", "control scale": "--control-scale",
         "control start": "--control-start", "control end": "--control-end",
         "control preprocess": "--control-preprocess", "controls": "--control"}


class _OfControl(argparse.Action):
    """Keeps ``{index of the --control before it: value}``; a second value for the same control is an error."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = dict(getattr(namespace, self.dest) or {})
        index = max(len(getattr(namespace, "control", None) or []) - 1, 0)
        if index in given:
            raise argparse.ArgumentError(self, f"given twice for --control number {index + 1}")
        given[index] = values
        setattr(namespace, self.dest, given)


def add_control_arguments(gen: argparse.ArgumentParser) -> None:
    gen.add_argument("--control", action="append", type=Path, default=[], metavar="IMAGE",
                     help="steer the structure with this picture (ControlNet / T2I-Adapter); repeat for several, "
                          "each followed by its own --control-* flags")
    gen.add_argument("--control-model", action=_OfControl, default={}, metavar="NAME|FOLDER",
                     help="the control model of the --control before it: catalog id, imported name or folder "
                          "(default: the model's own, if it ships one)")
    gen.add_argument("--control-scale", action=_OfControl, type=float, default={}, metavar="S",
                     help="how strongly that control steers, 0–4 (default 1)")
    gen.add_argument("--control-preprocess", action=_OfControl, default={}, choices=[p.value for p in Preprocess],
                     help="turn the picture into the control image: none (default), scribble (lines as drawn, "
                          "paper inverted) or canny (edges)")
    gen.add_argument("--control-start", action=_OfControl, type=float, default={}, metavar="F",
                     help="fraction of the steps before that control starts (default 0)")
    gen.add_argument("--control-end", action=_OfControl, type=float, default={}, metavar="F",
                     help="fraction of the steps after which that control stops (default 1)")


def control_specs(args: argparse.Namespace, info: ModelInfo) -> tuple[ControlSpec, ...]:
    """The ``--control*`` flags as specs (images checked to be pictures now, before any model loads)."""
    from ..core.init_image import check_image_file

    images = list(args.control)
    for flag, values in (("--control-model", args.control_model), ("--control-scale", args.control_scale),
                         ("--control-preprocess", args.control_preprocess),
                         ("--control-start", args.control_start), ("--control-end", args.control_end)):
        if values and not images:
            raise InvalidRequestError(flag, next(iter(values.values())), "used with --control IMAGE")
    specs = []
    for i, image in enumerate(images):
        try:
            check_image_file(image)
        except InvalidRequestError as exc:
            raise InvalidRequestError("control image", exc.value, exc.allowed) from None
        own = info.default_control
        if i in args.control_model:
            model, preprocess = args.control_model[i], Preprocess.NONE
        elif own is not None:
            model, preprocess = own
        else:
            raise InvalidRequestError("--control-model", None, f"given for --control {image} ({info.name} ships no "
                                      "control model of its own; `lcm-desktop models list` shows control models)")
        specs.append(ControlSpec(
            image, model,
            scale=_at(args.control_scale, i, 1.0),
            start=_at(args.control_start, i, 0.0),
            end=_at(args.control_end, i, 1.0),
            preprocess=_at(args.control_preprocess, i, preprocess),
        ))
    return tuple(specs)


def _at(values: dict, index: int, default):
    return values.get(index, default)
