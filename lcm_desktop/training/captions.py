"""Captions → the text encoder's input, ONE way whether or not the text encoder is trained.

Training reads a caption as plain text (as kohya's trainers do by default): no prompt syntax, no weights, one
CLIP window — the tokenizer's ids of at most ``CAPTION_TOKENS`` tokens between the start and end tokens, padded
to 77.  A longer caption is cut to its first 75 tokens and counted (``CaptionIds.note`` says how many), so a
folder whose captions straddle 75 tokens trains like any other.  Both modes use these ids: precomputed states
(frozen text encoder) and states encoded inside each step (text-encoder LoRA) see the same tokens.

``new_words``: caption words the tokenizer splits into several pieces, at least half of them single letters (or
its unknown token) — pieces the text encoder never learned as a word, so a LoRA on the text encoder is what lets it
learn them (``docs/STYLES.md``: the built-in model's word-level vocabulary spells "wug" as w, u, g).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..core.errors import TrainingError

CAPTION_TOKENS = 75  # CLIP's 77 positions less the start and end tokens
ENCODE_BATCH = 64
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class CaptionIds:
    """The distinct captions (sorted) and their token ids (C, 77); ``cut``: how many were longer than 75."""

    captions: tuple[str, ...]
    ids: torch.Tensor
    cut: int = 0

    @property
    def note(self) -> str | None:
        if not self.cut:
            return None
        return (f"{self.cut} caption{'s' if self.cut > 1 else ''} longer than {CAPTION_TOKENS} tokens "
                f"{'were' if self.cut > 1 else 'was'} cut to the first {CAPTION_TOKENS}.")

    def index(self, captions: Sequence[str]) -> torch.Tensor:
        """(N,) the row of each caption in ``ids``."""
        rows = {c: i for i, c in enumerate(self.captions)}
        return torch.tensor([rows[c] for c in captions], dtype=torch.long)


def caption_ids(tokenizer, captions: Sequence[str]) -> CaptionIds:
    """Tokenize the distinct ``captions`` into one 77-position window each (cut at 75 tokens, counted)."""
    distinct = tuple(sorted(set(captions)))
    window = CAPTION_TOKENS + 2
    cut = sum(len(tokenizer.tokenize(c)) > CAPTION_TOKENS for c in distinct)
    ids = tokenizer(list(distinct), padding="max_length", max_length=window, truncation=True,
                    return_tensors="pt").input_ids
    return CaptionIds(distinct, ids, cut)


def encode_ids(encoder, ids: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The SD-class text encoder's last hidden states (N, 77, D) for ids (N, 77), as the engine encodes a chunk."""
    return torch.cat([encoder(ids[i : i + ENCODE_BATCH].to(device))[0] for i in range(0, len(ids), ENCODE_BATCH)])


def new_words(tokenizer, captions: Sequence[str]) -> tuple[str, ...]:
    """Words of ``captions`` that the tokenizer spells mostly letter by letter: several pieces, at least half of
    them single letters or the unknown token (sorted)."""
    unknown = getattr(tokenizer, "unk_token", None)
    found = set()
    for word in {w.lower() for c in captions for w in _WORD.findall(c)}:
        pieces = tokenizer.tokenize(word)
        letters = sum(p == unknown or len(p.removesuffix("</w>")) <= 1 for p in pieces)
        if (len(pieces) > 1 and 2 * letters >= len(pieces)) or pieces == [unknown]:
            found.add(word)
    return tuple(sorted(found))


def check_captions(captions: Sequence[str]) -> None:
    """Training captions are plain text: one naming a style (``<lora:…>``) is refused before anything trains."""
    from ..core.prompt_syntax import prompt_loras

    for caption in captions:
        tags = prompt_loras(caption)
        if tags:
            shown = caption if len(caption) <= 60 else caption[:57] + "…"
            raise TrainingError(f"The caption {shown!r} names a style (<lora:{tags[0].name}>); training captions are "
                                "plain text: remove the tag from its .txt file.")
