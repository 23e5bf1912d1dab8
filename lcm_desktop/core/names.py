"""What a user may name a style or an imported model: one rule, used by every front end.

A style is ``<name>.safetensors`` in the styles folder and is asked for by that name (``--lora NAME``,
``<lora:NAME:0.8>``, ``models rm NAME``, the Styles panel), so training, importing, listing, using and
deleting all check the same rule here (review B-3: training once allowed ``-x``, which the store then
listed but could neither use nor delete).  Names are compared to the built-in ones ignoring case
(macOS folders ignore case): a new style or model named like a built-in one would hide it, so it is
refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import InvalidRequestError

MAX_NAME = 64
STYLE_NAME_RULE = f"1–{MAX_NAME} letters, digits, spaces, '.', '_' or '-', starting with a letter or digit"
MODEL_NAME_RULE = f"1–{MAX_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit"
_STYLE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._ -]{{0,{MAX_NAME - 1}}}")  # A1111 names styles by file stem
_MODEL = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME - 1}}}")


def is_style_name(name: object) -> bool:
    """Whether ``name`` may name a style: the rule above, no trailing space."""
    return isinstance(name, str) and _STYLE.fullmatch(name) is not None and name == name.rstrip()


def is_model_name(name: object) -> bool:
    return isinstance(name, str) and _MODEL.fullmatch(name) is not None


def check_style_name(name: object, field: str = "name", *, builtin: Iterable[str] = ()) -> str:
    """``name`` if it may name a new style; else ``InvalidRequestError`` naming ``field`` (``--name`` in the CLI)."""
    if not is_style_name(name):
        raise InvalidRequestError(field, name, STYLE_NAME_RULE)
    _check_not_builtin(str(name), field, builtin, "other than the built-in style {clash!r}, which it would hide")
    return str(name)


def check_model_name(name: object, field: str = "--name", *, builtin: Iterable[str] = ()) -> str:
    if not is_model_name(name):
        raise InvalidRequestError(field, name, MODEL_NAME_RULE)
    _check_not_builtin(str(name), field, builtin, "different from the catalog ids (it would be taken for "
                       "{clash!r}; choose another --name)")
    return str(name)


def _check_not_builtin(name: str, field: str, builtin: Iterable[str], allowed: str) -> None:
    clash = next((other for other in builtin if other.casefold() == name.casefold()), None)
    if clash is not None:
        raise InvalidRequestError(field, name, f"a name {allowed.format(clash=clash)}")
