"""Hostile prompts (issue 25, items 2 and 3): bounded length, depth and chunk count, finite weights, linear parsing.

Each case was a hang (a 1 MB prompt parsed for 300 s), a pile of encoder calls (30 KB of ``BREAK``: 5,001
chunks) or silent garbage (a 400-digit weight → inf) before; each is now one ``InvalidRequestError`` naming
the prompt, or a parse that finishes (the suite's per-test timeout fails a hang).
"""

from __future__ import annotations

import pytest

from lcm_desktop.core.errors import InvalidRequestError
from lcm_desktop.core.prompt_chunks import MAX_PROMPT_CHUNKS, SpecialTokens, chunk_prompt
from lcm_desktop.core.prompt_syntax import MAX_BRACKET_DEPTH, MAX_PROMPT_CHARS, parse_prompt
from lcm_desktop.core.request import GenerationRequest

SPECIAL = SpecialTokens(bos=1000, eos=1001, pad=1002, comma=7)


def _words(texts: list[str]) -> list[list[int]]:
    return [[100 + len(w) for w in t.split()] for t in texts]


@pytest.mark.parametrize(("prompt", "expected"), [
    ("a " * (MAX_PROMPT_CHARS // 2 + 1), "at most 20,000 characters"),
    ("(" * 10_000 + "x", f"nested at most {MAX_BRACKET_DEPTH} deep"),
    ("(x:" + "1" * 400 + ")", "a weight that is a number"),
    ("((x:" + "9" * 200 + "):" + "9" * 200 + ")", "product is a finite number"),  # each finite, the product inf
    ("<lora:ink:inf>", "weight is a number"),
    ("<lora:ink:nan>", "weight is a number"),
])
def test_hostile_prompts_are_one_line_errors_naming_the_prompt(prompt, expected):
    with pytest.raises(InvalidRequestError, match=expected) as info:
        parse_prompt(prompt)
    assert info.value.field == "prompt"
    assert "\n" not in str(info.value) and len(str(info.value)) < 200  # the prompt itself is not echoed


def test_the_request_refuses_an_over_long_prompt_or_negative_prompt_up_front():
    with pytest.raises(InvalidRequestError, match="negative_prompt"):
        GenerationRequest(prompt="x", negative_prompt="n" * (MAX_PROMPT_CHARS + 1))
    assert GenerationRequest(prompt="x" * MAX_PROMPT_CHARS).prompt  # the maximum itself is allowed


@pytest.mark.parametrize("prompt", [
    "(a" * (MAX_BRACKET_DEPTH - 1) + "(b)" * ((MAX_PROMPT_CHARS - 200) // 3),  # many pieces under deep brackets
    "<lora:" * (MAX_PROMPT_CHARS // 6),  # tag openings with no ">" (was quadratic: 120 KB took 23 s)
    "\\(" * (MAX_PROMPT_CHARS // 2),  # each escape its own piece (joined once, not += per piece)
])
def test_prompts_at_the_maximum_parse_completely(prompt):
    parsed = parse_prompt(prompt)
    assert sum(len(f.text) for f in parsed.fragments) > 0.3 * len(prompt) - 2 * MAX_BRACKET_DEPTH


def test_deep_brackets_within_the_limit_still_weigh_as_automatic1111():
    (fragment,) = parse_prompt("(" * MAX_BRACKET_DEPTH + "x" + ")" * MAX_BRACKET_DEPTH).fragments
    assert fragment.text == "x" and fragment.weight == pytest.approx(1.1 ** MAX_BRACKET_DEPTH, rel=1e-9)


def test_a_prompt_of_breaks_stops_at_the_chunk_limit():
    parsed = parse_prompt("a BREAK " * 2_499)  # 20 KB: 2,500 encoder calls before
    with pytest.raises(InvalidRequestError, match=f"at most {MAX_PROMPT_CHUNKS} chunks"):
        chunk_prompt(parsed, _words, SPECIAL)
    fits = parse_prompt("a BREAK " * (MAX_PROMPT_CHUNKS - 1) + "a")
    assert len(chunk_prompt(fits, _words, SPECIAL)) == MAX_PROMPT_CHUNKS


def test_a_bad_prompt_fails_when_the_request_is_made_naming_its_field():
    with pytest.raises(InvalidRequestError, match="a weight that is a number") as info:
        GenerationRequest(prompt="x", negative_prompt="(x:" + "1" * 400 + ")")  # before any model loads
    assert info.value.field == "negative_prompt"
    with pytest.raises(InvalidRequestError, match="nested at most"):
        GenerationRequest(prompt="(" * 10_000 + "x")
