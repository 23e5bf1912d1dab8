"""A parsed prompt → 77-token chunks of token ids with a weight per token, as AUTOMATIC1111 makes them.

CLIP reads 77 tokens: a start token, 75 of the prompt, an end token.  A longer prompt is cut
into chunks of 75 (``modules/sd_hijack_clip.py: tokenize_line``), each encoded on its own and
the embeddings concatenated (``engine/prompt_encoding.py``):

- each chunk is ``[BOS] + up to 75 tokens + [EOS] + [PAD]…`` (77 ids; for SD1.5's tokenizer PAD is
  EOS, for SDXL's second tokenizer it is ``!``) — for a prompt of at most 75 tokens exactly the
  ids the tokenizer makes with ``padding="max_length"``;
- a chunk that fills up in the middle of a phrase breaks after the last comma instead, if that
  comma is among its last ``COMMA_BACKTRACK`` (20) tokens (AUTOMATIC1111's ``comma_padding_backtrack``),
  and the words after the comma start the next chunk;
- ``BREAK`` ends the chunk at once (the rest of it is padding);
- each fragment is tokenized on its own (no start/end tokens), so emphasis never splits a word
  differently from how the user wrote it; the start, end and padding tokens weigh 1.0.

Plain Python: the tokenizer is passed in as a function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import InvalidRequestError
from .prompt_syntax import ParsedPrompt

MAX_PROMPT_CHUNKS = 32  # 2,400 tokens; each chunk is one text-encoder call (a Core ML model may take fewer)
CHUNK_TOKENS = 75  # prompt tokens per chunk
CHUNK_LENGTH = CHUNK_TOKENS + 2  # with the start and end tokens: CLIP's 77
COMMA_BACKTRACK = 20  # AUTOMATIC1111's default ``comma_padding_backtrack``


@dataclass(frozen=True)
class SpecialTokens:
    bos: int
    eos: int
    pad: int
    comma: int | None  # the id of "," (``,</w>``), if the vocabulary has one


@dataclass(frozen=True)
class PromptChunk:
    ids: tuple[int, ...]  # CHUNK_LENGTH token ids
    weights: tuple[float, ...]  # one per id

    @property
    def weighted(self) -> bool:
        return any(w != 1.0 for w in self.weights)


@dataclass(frozen=True)
class ChunkedPrompt:
    chunks: tuple[PromptChunk, ...]
    token_count: int  # AUTOMATIC1111's count: 75 per full chunk plus the last chunk's tokens

    def __len__(self) -> int:
        return len(self.chunks)


def chunk_prompt(
    parsed: ParsedPrompt,
    tokenize: Callable[[list[str]], Sequence[Sequence[int]]],
    special: SpecialTokens,
    *,
    backtrack: int = COMMA_BACKTRACK,
) -> ChunkedPrompt:
    """``tokenize(texts)`` → each text's ids without start/end tokens (a transformers tokenizer with
    ``add_special_tokens=False``)."""
    texts = [f.text for f in parsed.fragments if not f.is_break]
    token_lists = iter(tokenize(texts) if texts else [])
    chunks: list[PromptChunk] = []
    ids: list[int] = []
    weights: list[float] = []
    last_comma = -1
    count = 0

    def close(last: bool = False) -> None:
        nonlocal ids, weights, last_comma, count
        if len(chunks) >= MAX_PROMPT_CHUNKS:  # stop at once: 30 KB of BREAK would be 5,001 encoder calls
            raise InvalidRequestError("prompt", f"more than {MAX_PROMPT_CHUNKS} chunks",
                                      f"at most {MAX_PROMPT_CHUNKS} chunks of 75 tokens (each BREAK starts one)")
        count += len(ids) if last else CHUNK_TOKENS
        chunks.append(_wrap(ids, weights, special))
        ids, weights, last_comma = [], [], -1

    for fragment in parsed.fragments:
        if fragment.is_break:
            close()
            continue
        for token in next(token_lists):
            if token == special.comma:
                last_comma = len(ids)
            elif backtrack and len(ids) == CHUNK_TOKENS and last_comma != -1 and len(ids) - last_comma <= backtrack:
                cut = last_comma + 1  # the comma stays; the words after it move to the next chunk
                moved_ids, moved_weights = ids[cut:], weights[cut:]
                ids, weights = ids[:cut], weights[:cut]
                close()
                ids, weights = moved_ids, moved_weights
            if len(ids) == CHUNK_TOKENS:
                close()
            ids.append(token)
            weights.append(fragment.weight)
    if ids or not chunks:
        close(last=True)
    return ChunkedPrompt(tuple(chunks), count)


def _wrap(ids: list[int], weights: list[float], special: SpecialTokens) -> PromptChunk:
    """``[BOS] + ids + [EOS] + [PAD]…`` to CHUNK_LENGTH, weights 1.0 around the prompt's own."""
    padding = CHUNK_TOKENS - len(ids)
    return PromptChunk(
        (special.bos, *ids, special.eos, *([special.pad] * padding)),
        (1.0, *weights, 1.0, *([1.0] * padding)),
    )
