"""Prompts as AUTOMATIC1111 encodes them on PyTorch: weights, 75-token chunks, BREAK, SDXL, CFG padding.

The expected embeddings are derived by hand from the tiny CLIP itself: ids built here, the encoder
called once per chunk, weights multiplied and the mean restored, chunks concatenated.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lcm_desktop.core.request import GenerationRequest
from lcm_desktop.engine.engine import Engine
from lcm_desktop.engine.loaders import TorchLoader

# words of the tiny vocabulary that are one token each, so that 75 words are exactly one chunk
PLAIN = "a cat dog red green blue yellow circle square large small background top bottom left right moon".split()


def _words(n: int, start: int = 0) -> list[str]:
    return [PLAIN[(start + i) % len(PLAIN)] for i in range(n)]


@pytest.fixture(scope="module")
def engine(tiny_lcm):
    return Engine(TorchLoader(tiny_lcm))


@pytest.fixture(scope="module")
def clip(engine):
    return _clip(engine)


def _clip(engine):
    """The model's own tokenizer and CLIP, and a function: one chunk of prompt ids → its hidden states."""
    tokenizer, encoder = engine.components.text_encoder.pairs[0]
    vocab = tokenizer.get_vocab()

    def ids(words: list[str]) -> list[int]:
        return [vocab[f"{w}</w>"] for w in words]

    def chunk(prompt_ids: list[int]) -> torch.Tensor:
        assert len(prompt_ids) <= 75
        padded = [tokenizer.bos_token_id, *prompt_ids, tokenizer.eos_token_id]
        padded += [tokenizer.pad_token_id] * (77 - len(padded))
        with torch.inference_mode():
            return encoder(torch.tensor([padded]))[0]

    return ids, chunk


def test_a_short_unweighted_prompt_is_todays_embedding_bit_for_bit(engine):
    """What the text encoder made before prompts were parsed: the tokenizer's padded ids, one call."""
    tokenizer, encoder = engine.components.text_encoder.pairs[0]
    prompt = "a photo of an astronaut riding a horse on the moon, red, blurry background"
    ids = tokenizer([prompt], padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    with torch.inference_mode():
        before = encoder(ids)[0]
    now = engine.components.text_encoder.encode(prompt).hidden_states
    assert now.shape == (1, 77, 32)
    assert torch.equal(now, before)


def test_a_weighted_prompt_is_multiplied_per_token_and_its_mean_restored(tiny_lcm_clip_mean):
    engine = Engine(TorchLoader(tiny_lcm_clip_mean))  # its CLIP's states have a mean away from 0, as a trained one's
    ids, chunk = _clip(engine)
    assert abs(chunk(ids(["a"])).mean().item()) > 0.3
    z = chunk(ids(["a", "red", "circle", "on", "blue", "background"]))
    weights = torch.tensor([1.0, 1.0, 1.3, 1.0, 1.0, 1 / 1.1, 1.1] + [1.0] * 70)  # BOS a red circle on [blue] (bg)
    weighted = z * weights.reshape(1, -1, 1)
    expected = weighted * (z.mean() / weighted.mean())
    got = engine.components.text_encoder.encode("a (red:1.3) circle on [blue] (background)").hidden_states
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)
    assert not torch.allclose(got, z, atol=1e-3)  # the weights did something
    assert got.mean().item() == pytest.approx(z.mean().item(), rel=1e-5)  # …but not to the mean


def test_a_100_token_prompt_is_two_chunks_each_with_its_own_start_and_end(engine, clip):
    ids, chunk = clip
    words = _words(100)
    expected = torch.cat([chunk(ids(words[:75])), chunk(ids(words[75:]))], dim=1)
    got = engine.components.text_encoder.encode(" ".join(words)).hidden_states
    assert got.shape == (1, 154, 32)
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)


def test_break_starts_a_new_chunk(engine, clip):
    ids, chunk = clip
    got = engine.components.text_encoder.encode("a red circle BREAK blue square").hidden_states
    expected = torch.cat([chunk(ids(["a", "red", "circle"])), chunk(ids(["blue", "square"]))], dim=1)
    assert got.shape == (1, 154, 32)
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)


def test_lora_tags_never_reach_the_text_encoder(engine):
    encoder = engine.components.text_encoder
    assert torch.equal(encoder.encode("a red <lora:ink:0.8>circle<lora:paper>").hidden_states,
                       encoder.encode("a red circle").hidden_states)


def test_tokens_past_77_change_the_image_and_nothing_is_cut(engine):
    head = " ".join(_words(75))
    longer = head + " red circle"
    request = dict(seed=5, steps=2)
    short = engine.generate(GenerationRequest(head, **request))
    long = engine.generate(GenerationRequest(longer, **request))
    assert long.request.prompt == longer and long.truncation_note == "" and long.dropped_words == (0, 0)
    difference = np.abs(np.asarray(short.images[0], dtype=np.int16) - np.asarray(long.images[0], dtype=np.int16))
    assert difference.max() > 0


def test_cfg_pads_the_shorter_prompt_with_empty_prompt_chunks(tiny_sd):
    """Plain UNet, guidance 2: one CFG batch, so a 1-chunk negative prompt meets a 2-chunk prompt."""
    engine = Engine(TorchLoader(tiny_sd))
    den = engine.components.denoiser
    seen = []
    real_call = type(den).__call__

    def spy(self, sample, timestep, hidden, **kwargs):
        seen.append(hidden.clone())
        return real_call(self, sample, timestep, hidden, **kwargs)

    type(den).__call__, restore = spy, real_call
    try:
        prompt = " ".join(_words(90))
        engine.generate(GenerationRequest(prompt, negative_prompt="blurry", guidance_scale=2.0, steps=1, seed=1))
    finally:
        type(den).__call__ = restore
    (hidden,) = seen
    encoder = engine.components.text_encoder
    empty, negative = encoder.encode("").hidden_states, encoder.encode("blurry").hidden_states
    assert hidden.shape == (2, 154, 32)
    assert torch.equal(hidden[0:1, :77], negative) and torch.equal(hidden[0:1, 77:], empty)
    assert torch.equal(hidden[1:2], encoder.encode(prompt).hidden_states)


def test_sdxl_chunks_both_encoders_and_pools_the_first_chunk(tiny_sdxl):
    engine = Engine(TorchLoader(tiny_sdxl))
    encoder = engine.components.text_encoder
    words = _words(100, start=3)
    long = encoder.encode(" ".join(words))
    first = encoder.encode(" ".join(words[:75]))
    second = encoder.encode(" ".join(words[75:]))
    assert long.hidden_states.shape == (1, 154, 64)  # two encoders' 32 + 32, two chunks
    assert torch.equal(long.hidden_states, torch.cat([first.hidden_states, second.hidden_states], dim=1))
    assert torch.equal(long.pooled, first.pooled) and not torch.equal(long.pooled, second.pooled)

    weighted = encoder.encode("a (red:1.5) circle")
    plain = encoder.encode("a red circle")
    for half in (slice(0, 32), slice(32, 64)):  # each encoder's mean is restored on its own
        assert weighted.hidden_states[..., half].mean().item() == pytest.approx(
            plain.hidden_states[..., half].mean().item(), rel=1e-5)
    assert torch.equal(weighted.pooled, plain.pooled)  # AUTOMATIC1111 pools before weighting

    request = dict(negative_prompt="ugly", guidance_scale=3.0, steps=2, seed=2)
    cut = engine.generate(GenerationRequest(" ".join(words[:75]), **request))
    whole = engine.generate(GenerationRequest(" ".join(words), **request))
    assert np.abs(np.asarray(cut.images[0], np.int16) - np.asarray(whole.images[0], np.int16)).max() > 0
