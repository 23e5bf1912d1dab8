"""A prompt → its embedding, chunk by chunk and weighted, as AUTOMATIC1111 encodes it; any backend's CLIP.

    encoder = PromptEncoder([(tokenizer, run)], pooled=False)     # run: ids (1, 77) → states, pooled
    embedding = encoder.encode("a (red:1.3) cat, " * 30)           # hidden_states (1, 77·k, D)

1. parse (``core/prompt_syntax.py``): emphasis, ``BREAK``, ``<lora:…>`` tags taken out;
2. chunk (``core/prompt_chunks.py``): ``[BOS] + 75 tokens + [EOS/PAD]`` per chunk, one weight per token;
3. encode each chunk on its own (the backend's ``run``: a PyTorch module, or a Core ML package that
   takes exactly 77 ids), then apply the weights as AUTOMATIC1111's default emphasis ("Original",
   ``modules/sd_emphasis.py``): ``z = z · w`` per token, then ``z *= mean(z_before) / mean(z_after)``
   (the means over the whole chunk), so emphasis shifts attention between tokens without
   scaling the chunk as a whole;
4. concatenate the chunks along the sequence: (1, 77·k, D); SDXL: each encoder is chunked and weighted
   on its own and the two concatenated along D; the pooled embedding is the second encoder's for the
   first chunk (as AUTOMATIC1111 does).

An unweighted prompt of at most 75 tokens is one chunk of exactly the ids a tokenizer makes with
``padding="max_length"``, and no weighting is applied: the embedding is today's, bit for bit.

Padding (``pad_chunks``): where two embeddings must have the same length — a prompt and its negative
in one classifier-free-guidance batch, or a Core ML UNet converted for a fixed number of chunks —
the shorter one is followed by copies of the empty prompt's chunk (``encode("")``: BOS, EOS, padding),
AUTOMATIC1111's ``pad_cond_uncond`` rule.  PyTorch pads only a CFG pair, to the longer of the two;
a Core ML model always pads to the chunks it was converted for.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..core.prompt_chunks import CHUNK_LENGTH, ChunkedPrompt, SpecialTokens, chunk_prompt
from ..core.prompt_syntax import ParsedPrompt, parse_prompt
from .components import PromptEmbedding

# ids (1, 77) int64 → (hidden states (1, 77, D), pooled (1, P) or None)
ChunkRunner = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


def special_tokens(tokenizer) -> SpecialTokens:
    """A transformers CLIP tokenizer's start, end and padding ids, and its comma's."""
    eos = int(tokenizer.eos_token_id)
    pad = tokenizer.pad_token_id
    comma = tokenizer.get_vocab().get(",</w>")
    return SpecialTokens(int(tokenizer.bos_token_id), eos, eos if pad is None else int(pad), comma)


def emphasize(z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """AUTOMATIC1111's "Original" emphasis: (1, 77, D) states × (77,) weights, then the chunk's mean restored."""
    original_mean = z.mean()
    z = z * weights.to(z.device, z.dtype).reshape(1, -1, 1)
    return z * (original_mean / z.mean())


def pad_chunks(states: torch.Tensor, chunks: int, empty: torch.Tensor) -> torch.Tensor:
    """(B, 77·k, D) → (B, 77·chunks, D), followed by copies of ``empty`` (1, 77, D), the empty prompt's chunk."""
    missing = chunks - states.shape[1] // CHUNK_LENGTH
    if missing <= 0:
        return states
    filler = empty.to(states.device, states.dtype).expand(states.shape[0], -1, -1).repeat(1, missing, 1)
    return torch.cat([states, filler], dim=1)


def chunk_count(embedding: PromptEmbedding) -> int:
    return embedding.hidden_states.shape[1] // CHUNK_LENGTH


class PromptEncoder:
    """One CLIP encoder, or SDXL's two: ``parts`` is ``[(tokenizer, run), …]``; ``pooled``: return the last
    encoder's pooled embedding of the first chunk (SDXL)."""

    def __init__(self, parts: list[tuple[object, ChunkRunner]], *, pooled: bool):
        self.parts = [(tokenizer, run, special_tokens(tokenizer)) for tokenizer, run in parts]
        self.pooled = pooled

    def chunks(self, prompt: str) -> ChunkedPrompt:
        """The prompt's chunks for the first tokenizer (their count is the embedding's length / 77)."""
        tokenizer, _, special = self.parts[0]
        return chunk_prompt(parse_prompt(prompt), _tokenize_with(tokenizer), special)

    def encode(self, prompt: str) -> PromptEmbedding:
        return self.encode_parsed(parse_prompt(prompt))

    def encode_parsed(self, parsed: ParsedPrompt) -> PromptEmbedding:
        states, pooled = [], None
        for tokenizer, run, special in self.parts:
            chunked = chunk_prompt(parsed, _tokenize_with(tokenizer), special)
            encoded = []
            for i, chunk in enumerate(chunked.chunks):
                z, chunk_pooled = run(torch.tensor([chunk.ids], dtype=torch.int64))
                if chunk.weighted:
                    z = emphasize(z, torch.tensor(chunk.weights, dtype=torch.float32))
                if i == 0:
                    pooled = chunk_pooled
                encoded.append(z)
            states.append(torch.cat(encoded, dim=1) if len(encoded) > 1 else encoded[0])
        lengths = {s.shape[1] for s in states}
        if len(lengths) > 1:
            raise ValueError(f"the text encoders' tokenizers cut the prompt into different chunks: {sorted(lengths)}")
        hidden = torch.cat(states, dim=-1) if len(states) > 1 else states[0]
        return PromptEmbedding(hidden, pooled if self.pooled else None)


def _tokenize_with(tokenizer) -> Callable[[list[str]], list[list[int]]]:
    def tokenize(texts: list[str]) -> list[list[int]]:
        # verbose=False: no "longer than the maximum sequence length" warning (chunks are 77 by construction)
        return tokenizer(texts, truncation=False, add_special_tokens=False, verbose=False)["input_ids"]

    return tokenize
