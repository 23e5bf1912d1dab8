"""What the sketch's overlay layers add to a request: the Lines layer (and "Edges from picture") as structure
controls, the Mask layer as an inpainting mask.  Qt-free: the window hands in PIL images.

Rules (one home):
- Lines: with control on and the lines layer drawn (and shown), one ``ControlSpec`` of the lines as drawn (white on
  black, ControlNet 1.1's scribble convention, preprocess none), with the session's control model ("" : the model's
  own, ``ModelInfo.default_control``) and scale.  Text mode too: a text-to-image request with a control.
- Edges: with control on and ``control_edges``, a canny control (``Preprocess.CANNY``) of the canvas's picture.
- Mask: in Image or Sketch mode with the mask layer drawn, ``Inpaint(mask, blur=session.mask_blur)`` and strength 1
  (the CLI's default with ``--mask``: a mask means "repaint this", the strength slider is for unmasked edits).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.control import ControlSpec, Preprocess
from ..core.errors import InvalidRequestError
from ..core.model_info import ModelInfo


def control_model(session: Any, info: ModelInfo | None, resolve: Callable[[str], Path] | None = None) -> str | Path:
    """The control model the session names, or the model's own, through ``resolve`` (the window hands in
    ``models.resolve.resolve_control``, as the CLI does: the app's engine takes folders); a clear line when there
    is none or it is not found."""
    resolve = resolve or (lambda name: name)
    if session.control_model:
        return resolve(session.control_model)
    if info is not None and info.default_control is not None:
        return resolve(info.default_control[0])
    name = info.name if info is not None else "this model"
    raise InvalidRequestError("control model", None, f"one chosen in the Control panel ({name} ships no control "
                              "model of its own; the model manager lists control models)")


def layer_controls(session: Any, info: ModelInfo | None, lines: Any, picture: Any,
                   resolve: Callable[[str], Path] | None = None) -> tuple[ControlSpec, ...]:
    if not session.control_enabled:
        return ()
    sources = []
    if lines is not None:
        sources.append((lines.convert("RGB"), Preprocess.NONE))
    if session.control_edges and picture is not None:
        sources.append((picture, Preprocess.CANNY))
    if not sources:
        return ()
    model = control_model(session, info, resolve)
    return tuple(ControlSpec(image, model, scale=round(session.control_scale, 2), preprocess=preprocess)
                 for image, preprocess in sources)


def layer_inpaint(session: Any, mask: Any):
    if mask is None:
        return None
    from ..core.mask import Inpaint

    return Inpaint(mask=mask, blur=session.mask_blur)
