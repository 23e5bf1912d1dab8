"""Long and weighted prompts on Core ML (the reference executor runs the converted packages on any OS).

The Unet is converted for a fixed number of 75-token chunks (``--max-prompt-chunks``, recorded in the
manifest); the text encoder package runs once per chunk; a shorter prompt is padded with empty-prompt
chunks, a longer one is one clear line; models converted before the option keep 77 tokens and cut.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from tiny_models import converted

from lcm_desktop.core.errors import PromptTooLongError
from lcm_desktop.core.manifest import load_manifest
from lcm_desktop.core.parity import MIN_PSNR_DB, psnr
from lcm_desktop.core.request import GenerationRequest
from lcm_desktop.engine.engine import Engine
from lcm_desktop.engine.loaders import CoreMLLoader, TorchLoader

# one token each in the tiny vocabulary
PLAIN = "a cat dog red green blue yellow circle square large small background top bottom left right moon".split()
COMPONENTS = ("text_encoder", "unet", "vae_decoder")


def _words(n: int) -> str:
    return " ".join(PLAIN[i % len(PLAIN)] for i in range(n))


@pytest.fixture(scope="module")
def two_chunks(tmp_path_factory, tiny_lcm_clip_mean):
    """The tiny LCM converted with ``--max-prompt-chunks 2`` (150 prompt tokens), on the reference executor.

    Its CLIP's states have a mean away from 0, as a trained CLIP's: AUTOMATIC1111's emphasis divides by that
    mean, which for a fresh random CLIP (final layer norm, bias 0) is 0 up to rounding — fp16 noise then."""
    folder = converted(tmp_path_factory, tiny_lcm_clip_mean, components=COMPONENTS, max_prompt_chunks=2)
    return folder, Engine(CoreMLLoader(folder, compute_units="REFERENCE", cache_dir=folder.parent / "unused"))


def test_the_manifest_and_the_unet_say_two_chunks(two_chunks):
    folder, engine = two_chunks
    manifest = load_manifest(folder)
    assert manifest.max_prompt_chunks == 2
    assert manifest.require("Unet").input("encoder_hidden_states").shape == (1, 32, 1, 154)
    assert manifest.require("TextEncoder").input("input_ids").shape == (1, 77)  # still one chunk per call


def test_a_two_chunk_prompt_makes_the_pytorch_image(two_chunks, tiny_lcm_clip_mean):
    _, engine = two_chunks
    request = GenerationRequest(_words(100) + ", (red circle:1.3)", seed=4, steps=2)
    ours = engine.generate(request)
    ref = Engine(TorchLoader(tiny_lcm_clip_mean)).generate(request)
    assert ours.request.prompt == ref.request.prompt == request.prompt and ours.truncation_note == ""
    a, b = (np.asarray(r.images[0], dtype=np.float64) for r in (ours, ref))
    assert a.std() > 5
    assert psnr(a, b) >= MIN_PSNR_DB  # measured: 60 dB


def test_a_short_prompt_is_padded_with_empty_prompt_chunks(two_chunks, tiny_lcm_clip_mean):
    _, engine = two_chunks
    encoder = engine.components.text_encoder
    short, empty = encoder.encode("a red circle").hidden_states, encoder.prompts.encode("").hidden_states
    assert short.shape == (1, 154, 32)
    assert torch.equal(short[:, 77:], empty)
    torch_states = Engine(TorchLoader(tiny_lcm_clip_mean)).components.text_encoder.encode("a red circle").hidden_states
    assert psnr(short[:, :77].numpy(), torch_states.numpy()) >= MIN_PSNR_DB  # the first chunk is the prompt's


def test_a_prompt_over_the_maximum_is_one_line_naming_tokens_maximum_and_fix(two_chunks):
    _, engine = two_chunks
    with pytest.raises(PromptTooLongError) as caught:
        engine.generate(GenerationRequest(_words(160), seed=1, steps=1))
    message = str(caught.value)
    assert message == ("The prompt is 160 tokens (3 chunks of 75); this Core ML model takes at most 150 tokens "
                       "(2 chunks): shorten it, or convert the model again with --max-prompt-chunks 3.")


def test_a_default_conversion_takes_one_chunk_and_refuses_more(coreml_lcm):
    assert load_manifest(coreml_lcm).max_prompt_chunks == 1
    engine = Engine(CoreMLLoader(coreml_lcm, compute_units="REFERENCE", cache_dir=coreml_lcm.parent / "unused"))
    with pytest.raises(PromptTooLongError, match=r"--max-prompt-chunks 2\.$"):
        engine.components.text_encoder.encode(_words(80))


def test_a_model_converted_before_chunks_keeps_77_tokens_and_cuts_at_a_word(coreml_lcm, tmp_path):
    old = tmp_path / "old-coreml"
    shutil.copytree(coreml_lcm, old)
    data = json.loads((old / "manifest.json").read_text())
    del data["max_prompt_chunks"]
    (old / "manifest.json").write_text(json.dumps(data))
    engine = Engine(CoreMLLoader(old, compute_units="REFERENCE", cache_dir=tmp_path / "unused"))
    result = engine.generate(GenerationRequest(_words(80), seed=1, steps=1))
    assert result.dropped_words == (5, 0)
    assert result.request.prompt == _words(75)
    assert result.truncation_note.startswith("The last 5 words of the prompt were dropped")
