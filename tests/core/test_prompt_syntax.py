"""AUTOMATIC1111's prompt syntax: its own docstring examples, escapes, BREAK, LoRA tags, and the chunking rules."""

from __future__ import annotations

import pytest

from lcm_desktop.core.errors import InvalidRequestError
from lcm_desktop.core.prompt_chunks import CHUNK_LENGTH, SpecialTokens, chunk_prompt
from lcm_desktop.core.prompt_syntax import BREAK, Fragment, LoraTag, parse_attention, parse_prompt, prompt_loras

# AUTOMATIC1111's parse_prompt_attention docstring examples (modules/prompt_parser.py), and a few more of its rules.
A1111_TABLE = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    (r"\(literal\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [("a ", 1.0), ("house", 1.573), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55), (", sun, ", 1.1),
         ("sky", 1.4641), (".", 1.1)],
    ),
    ("((word))", [("word", 1.21)]),
    ("[word]", [("word", 1 / 1.1)]),
    ("[[word]]", [("word", 1 / 1.21)]),
    ("(word:1.3)", [("word", 1.3)]),
    ("(word: 0.5)", [("word: 0.5", 1.1)]),  # a space before the number: not a weight, text in a plain "(…)"
    ("(a [b] c)", [("a ", 1.1), ("b", 1.0), (" c", 1.1)]),
    ("[unbalanced", [("unbalanced", 1 / 1.1)]),
    ("closed) and]", [("closed) and]", 1.0)]),  # nothing open: plain text
    ("time 10:30", [("time 10:30", 1.0)]),
    ("a:1.5) b", [("a:1.5) b", 1.0)]),  # a weight without "(" is text
    (r"\\ back \x slash", [("\\ back x slash", 1.0)]),  # \\ is one backslash; a lone one disappears
    (r"\((word)\)", [("(", 1.0), ("word", 1.1), (")", 1.0)]),
    ("", [("", 1.0)]),
    ("()", [("", 1.0)]),
]


@pytest.mark.parametrize(("prompt", "expected"), A1111_TABLE)
def test_a1111_examples(prompt, expected):
    got = parse_attention(prompt)
    assert [f.text for f in got] == [text for text, _ in expected]
    assert [f.weight for f in got] == pytest.approx([weight for _, weight in expected], rel=1e-12)
    assert not any(f.is_break for f in got)


def test_break_splits_fragments_and_never_merges():
    assert parse_attention("a cat BREAK a dog") == (Fragment("a cat"), BREAK, Fragment("a dog"))
    assert parse_attention("(a BREAK b)") == (Fragment("a", 1.1), BREAK, Fragment("b", 1.1))
    assert parse_attention("BREAKING news") == (Fragment("BREAKING news"),)  # a whole word only
    assert parse_attention("break") == (Fragment("break"),)  # capitals only


def test_lora_tags_are_taken_out_before_the_brackets():
    parsed = parse_prompt("a (red:1.3) cat <lora:ink style:0.8>, <lora:paper> <hypernet:x:1>")
    assert parsed.loras == (LoraTag("ink style", 0.8), LoraTag("paper", 1.0))
    assert "".join(f.text for f in parsed.fragments) == "a red cat ,  <hypernet:x:1>"
    assert [f.weight for f in parsed.fragments] == [1.0, 1.3, 1.0]
    assert parsed.weighted and not parse_prompt("a <lora:x:2> cat").weighted
    assert prompt_loras("<lora:a:-0.5>(x)<lora:b:1e-1>") == (LoraTag("a", -0.5), LoraTag("b", 0.1))
    assert prompt_loras("no tags (here:1.2)") == ()


@pytest.mark.parametrize(
    ("prompt", "needle"),
    [("<lora:ink:strong>", "weight is a number"), ("<lora::0.5>", "with a name"),
     ("<lora:ink:0.8:0.5>", "one weight"), ("(word:1.2.3)", "a weight that is a number")],
)
def test_bad_tags_and_weights_are_one_line_naming_them(prompt, needle):
    with pytest.raises(InvalidRequestError, match=needle) as caught:
        parse_prompt(prompt)
    assert "\n" not in str(caught.value)


# -- chunks -----------------------------------------------------------------------------------------
SPECIAL = SpecialTokens(bos=1000, eos=1001, pad=1002, comma=7)


def _words(text: str) -> list[list[int]]:
    """A stand-in tokenizer: one token per space-separated word (its length), "," → 7."""
    return [[7 if w == "," else 100 + len(w) for w in t.split()] for t in text]


def _chunks(prompt: str):
    return chunk_prompt(parse_prompt(prompt), lambda texts: _words(texts), SPECIAL)


def test_a_short_prompt_is_one_chunk_as_the_tokenizer_pads_it():
    out = _chunks("a bb (ccc:1.5)")
    (chunk,) = out.chunks
    assert chunk.ids == (1000, 101, 102, 103, 1001, *[1002] * 72)
    assert chunk.weights == (1.0, 1.0, 1.0, 1.5, *[1.0] * 73)
    assert out.token_count == 3
    assert _chunks("").chunks[0].ids == (1000, 1001, *[1002] * 75)


def test_long_prompts_are_75_token_chunks_and_break_after_a_late_comma():
    plain = _chunks(" ".join(["w"] * 100))
    assert len(plain) == 2 and plain.token_count == 100
    assert plain.chunks[0].ids == (1000, *[101] * 75, 1001)
    assert plain.chunks[1].ids == (1000, *[101] * 25, 1001, *[1002] * 50)
    assert all(len(c.ids) == len(c.weights) == CHUNK_LENGTH for c in plain.chunks)

    # a comma at token 60 (within the last 20 of the chunk): the 14 words after it move to chunk two
    late = _chunks(" ".join(["w"] * 59 + [","] + ["w"] * 40))
    assert late.chunks[0].ids == (1000, *[101] * 59, 7, 1001, *[1002] * 15)
    assert late.chunks[1].ids[:42] == (1000, *[101] * 40, 1001)
    # a comma at token 40 is too far back: cut at 75 tokens
    early = _chunks(" ".join(["w"] * 39 + [","] + ["w"] * 60))
    assert early.chunks[0].ids[75:] == (101, 1001)


def test_break_pads_to_the_next_chunk():
    out = _chunks("a bb BREAK ccc")
    assert len(out) == 2 and out.token_count == 76
    assert out.chunks[0].ids[:4] == (1000, 101, 102, 1001)
    assert out.chunks[1].ids[:3] == (1000, 103, 1001)
    assert len(_chunks("a BREAK")) == 1  # nothing after it: no empty chunk
