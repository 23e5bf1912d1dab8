"""Prompts as AUTOMATIC1111 users write them: emphasis, ``BREAK`` and ``<lora:name:weight>`` tags.

    parse_prompt("a (red:1.3) cat <lora:ink:0.8>")
    → ParsedPrompt(fragments=(Fragment("a ", 1.0), Fragment("red", 1.3), Fragment(" cat ", 1.0)),
                   loras=(LoraTag("ink", 0.8),))

The semantics are AUTOMATIC1111's (``modules/prompt_parser.py: parse_prompt_attention`` and
``modules/extra_networks.py: parse_prompt``), checked against the examples of its docstring
(tests/core/test_prompt_syntax.py):

- ``(text)`` multiplies the weight of ``text`` by 1.1, ``[text]`` divides it by 1.1, ``(text:1.3)``
  multiplies it by 1.3; brackets nest multiplicatively (``((text))`` → 1.21).
- ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are the literal characters; a backslash before anything else
  disappears.
- Unbalanced brackets: a ``(`` or ``[`` never closed applies to the rest of the prompt; a ``)`` or
  ``]`` with nothing to close, and ``:1.3)`` without an open ``(``, are plain text.
- ``BREAK`` (a whole word, capitals) ends the current 75-token chunk: the text after it starts a new one.
- Runs of equal weights merge into one fragment (the text encoder sees them as one text).
- ``<lora:name>`` and ``<lora:name:weight>`` (weight 1.0 by default) are taken out of the text before
  the brackets are read, as AUTOMATIC1111 takes out its extra-network tags; they never reach the text
  encoder.  Other ``<kind:…>`` tags are left in the text.  A tag with a weight that is not a number,
  or with AUTOMATIC1111's separate text-encoder/UNet weights (``<lora:name:0.8:0.5>``), is an error.

Why not a library: ``compel`` (the library diffusers' docs recommend) has its own syntax
(``word+``, ``word++``, ``(a phrase)1.3``, ``.and()``) in which ``(word:1.3)`` and ``[word]`` do not mean
what they mean in AUTOMATIC1111, and it applies weights differently (a weight below 1 blends towards
the prompt without those words; no restoring of the chunk's mean), so its embeddings are not
AUTOMATIC1111's.  The parser is small; it is written here, plain Python, and the tokens → chunks
→ embedding steps live in ``core/prompt_chunks.py`` and ``engine/prompt_encoding.py``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import NamedTuple

from .errors import InvalidRequestError

# Bounds (documented in docs/ARCHITECTURE.md and checked before any work): a prompt longer than this, or
# brackets nested deeper, is an InvalidRequestError naming the prompt.  With them the parser is linear:
# each piece of text is multiplied by at most MAX_BRACKET_DEPTH open brackets.
MAX_PROMPT_CHARS = 20_000  # ~10 pages of text; 32 chunks of 75 tokens are ~8,000 characters
MAX_BRACKET_DEPTH = 100  # (((…))) 100 deep already weighs 1.1**100 ≈ 13,800
MAX_TAG_CHARS = 1_000  # a longer <lora:…> is plain text (bounds the tag search on text with no ">")
ROUND = 1.1  # ``(text)``
SQUARE = 1 / 1.1  # ``[text]``

# One token of the bracket language, in the order the alternatives must be tried.
_TOKEN = re.compile(
    r"""
    (?P<escaped>\\[()\[\]\\])       # \( \) \[ \] \\ : the character itself
  | (?P<backslash>\\)               # any other backslash: dropped
  | (?P<open>[(\[])
  | :(?P<weight>[+-]?[.\d]+)\)      # (text:1.3) closes with a weight
  | (?P<close>[)\]])
  | (?P<text>[^\\()\[\]:]+|:)
    """,
    re.X,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
_LORA = re.compile(rf"<lora:([^>]{{1,{MAX_TAG_CHARS}}})>")


class LoraTag(NamedTuple):
    """A ``<lora:name:weight>`` tag: the name the user wrote (resolved against installed styles elsewhere)."""

    name: str
    weight: float = 1.0


@dataclass(frozen=True)
class Fragment:
    """Text with one emphasis weight; ``is_break``: a ``BREAK`` (its text is empty)."""

    text: str
    weight: float = 1.0
    is_break: bool = False


BREAK = Fragment("", 1.0, is_break=True)


@dataclass(frozen=True)
class ParsedPrompt:
    fragments: tuple[Fragment, ...]
    loras: tuple[LoraTag, ...] = ()

    @property
    def weighted(self) -> bool:
        """Whether any text has a weight other than 1 (an unweighted prompt encodes as plain text)."""
        return any(f.weight != 1.0 for f in self.fragments if not f.is_break)


def parse_prompt(prompt: str) -> ParsedPrompt:
    """The prompt's LoRA tags, and the rest of it as weighted fragments (see the module docstring)."""
    text, loras = split_loras(prompt)
    return ParsedPrompt(parse_attention(text), loras)


def prompt_loras(prompt: str) -> tuple[LoraTag, ...]:
    """Only the ``<lora:…>`` tags of a prompt, in order (for a front end resolving them to installed styles)."""
    return split_loras(prompt)[1]


def split_loras(prompt: str) -> tuple[str, tuple[LoraTag, ...]]:
    """The prompt without its ``<lora:…>`` tags (each replaced by nothing), and the tags."""
    check_prompt_length("prompt", prompt)
    tags: list[LoraTag] = []

    def take(match: re.Match) -> str:
        tags.append(_lora_tag(match.group(0), match.group(1)))
        return ""

    return _LORA.sub(take, prompt), tuple(tags)


def check_prompt_length(field: str, text: str) -> None:
    """Refuse a prompt longer than ``MAX_PROMPT_CHARS`` (one line naming the field), before any parsing."""
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidRequestError(field, f"{len(text):,} characters", f"at most {MAX_PROMPT_CHARS:,} characters")


def check_prompt(field: str, text: str) -> None:
    """Everything about a prompt that needs no tokenizer — its length, brackets, weights and tags — checked when a
    request is made, so a bad prompt is one line at once, not after the model has loaded."""
    check_prompt_length(field, text)
    try:
        parse_prompt(text)
    except InvalidRequestError as exc:
        if exc.field == field:
            raise
        raise InvalidRequestError(field, exc.value, exc.allowed) from None


def _lora_tag(tag: str, body: str) -> LoraTag:
    name, *weights = (part.strip() for part in body.split(":"))
    if not name:
        raise InvalidRequestError("prompt", tag, "a LoRA tag with a name, like <lora:name:0.8>")
    if len(weights) > 1:
        raise InvalidRequestError("prompt", tag, f"a LoRA tag with one weight, like <lora:{name}:{weights[0]}>")
    if not weights:
        return LoraTag(name)
    try:
        weight = float(weights[0])
    except ValueError:
        weight = math.nan
    if not math.isfinite(weight):
        allowed = f"a LoRA tag whose weight is a number, like <lora:{name}:0.8>"
        raise InvalidRequestError("prompt", _short(tag), allowed) from None
    return LoraTag(name, weight)


def parse_attention(text: str) -> tuple[Fragment, ...]:
    """``text`` (no LoRA tags) → weighted fragments and ``BREAK``s, as AUTOMATIC1111's ``parse_prompt_attention``."""
    out: list[list] = []  # [text, weight, is_break], multiplied in place while brackets close
    rounds: list[int] = []  # where each open "(" started in `out`
    squares: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for item in out[start:]:
            item[1] *= factor

    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "open" and len(rounds) + len(squares) >= MAX_BRACKET_DEPTH:
            raise InvalidRequestError("prompt", f"brackets nested {MAX_BRACKET_DEPTH + 1} deep at character "
                                      f"{match.start() + 1}", f"brackets nested at most {MAX_BRACKET_DEPTH} deep")
        if kind == "escaped":
            out.append([match.group(0)[1], 1.0, False])
        elif kind == "backslash":
            out.append(["", 1.0, False])
        elif kind == "open":
            (rounds if match.group(0) == "(" else squares).append(len(out))
        elif kind == "weight" and rounds:
            multiply(rounds.pop(), _weight(match.group("weight")))
        elif kind == "close" and match.group(0) == ")" and rounds:
            multiply(rounds.pop(), ROUND)
        elif kind == "close" and match.group(0) == "]" and squares:
            multiply(squares.pop(), SQUARE)
        else:  # text, or a bracket with nothing to close
            for i, part in enumerate(_BREAK.split(match.group(0))):
                if i:
                    out.append(["", 1.0, True])
                out.append([part, 1.0, False])
    for start in rounds:
        multiply(start, ROUND)
    for start in squares:
        multiply(start, SQUARE)
    bad = next((item for item in out if not math.isfinite(item[1])), None)
    if bad is not None:  # e.g. (((x:1e300):1e300)) overflows to inf
        raise InvalidRequestError("prompt", f"a weight of {bad[1]} on {_short(bad[0])!r}",
                                  "weights whose product is a finite number")
    return _merge(out)


def _weight(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # "1.2.3", or 400 digits (inf)
        raise InvalidRequestError("prompt", _short(f":{text})"), "a weight that is a number, like (word:1.3)")
    return value


def _short(text: str, limit: int = 40) -> str:
    """At most ``limit`` characters of a user's text for an error message."""
    return text if len(text) <= limit else f"{text[:limit]}…"


def _merge(items: list[list]) -> tuple[Fragment, ...]:
    """Neighbouring fragments with equal weights become one; a ``BREAK`` never merges."""
    merged: list[list] = []  # [[texts], weight, is_break]: joined once at the end (linear, not += per piece)
    for text, weight, is_break in items:
        last = merged[-1] if merged else None
        if last is not None and not is_break and not last[2] and last[1] == weight:
            last[0].append(text)
        else:
            merged.append([[text], weight, is_break])
    if not merged:
        return (Fragment(""),)
    return tuple(BREAK if is_break else Fragment("".join(texts), weight) for texts, weight, is_break in merged)
