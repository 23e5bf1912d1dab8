"""How much of a prompt a text encoder can take, said out loud instead of truncated in silence.

PyTorch, and Core ML models converted with a ``max_prompt_chunks`` in their manifest, take any prompt
that fits their chunks (``prompt_encoding.py``): nothing is cut.  This is for the Core ML models
converted before that (77 tokens, one chunk): CLIP reads 77 tokens (75 of them the prompt), so a
longer prompt is cut at a whole word, the text
encoder encodes exactly that cut text, and the request that is recorded in the PNG is the cut
text — so the image's settings reproduce the image, and the user is told how many words were
dropped.  (Cutting at a token, as a tokenizer's ``truncation=True`` does, would encode half a word
that no recorded prompt could reproduce.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class PromptFit:
    used: str  # the prompt the text encoder sees: the whole prompt, or its longest whole-word prefix that fits
    dropped_words: int = 0
    max_tokens: int = 77

    @property
    def truncated(self) -> bool:
        return self.dropped_words > 0


def fit_prompt(prompt: str, count_tokens: Callable[[str], int], max_tokens: int) -> PromptFit:
    """The longest whole-word prefix of ``prompt`` whose token count (with start/end tokens) ≤ ``max_tokens``."""
    if count_tokens(prompt) <= max_tokens:
        return PromptFit(prompt, 0, max_tokens)
    ends = [m.end() for m in _WORD.finditer(prompt)]
    low, high = 0, len(ends)  # prefixes of `low` words fit; `high` words do not
    while high - low > 1:
        middle = (low + high) // 2
        if count_tokens(prompt[: ends[middle - 1]]) <= max_tokens:
            low = middle
        else:
            high = middle
    used = prompt[: ends[low - 1]] if low else ""
    return PromptFit(used, len(ends) - low, max_tokens)
