"""Engine behaviour: call counts, the prompt cache, cancel, determinism, previews, decoders, errors."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest
import torch

from lcm_desktop.core.errors import (
    BackendUnavailableError,
    GenerationCancelled,
    InvalidRequestError,
    ModelCorruptError,
    ModelFormatError,
    UnsafeModelError,
)
from lcm_desktop.core.request import GenerationRequest
from lcm_desktop.engine.engine import Engine
from lcm_desktop.engine.loaders import TorchLoader


@pytest.fixture(scope="module")
def engine(tiny_lcm, tiny_taesd):
    return Engine(TorchLoader(tiny_lcm, tiny_decoder=tiny_taesd))


def _pixels(result):
    return np.stack([np.asarray(im) for im in result.images]).astype(np.int16)


def test_one_denoiser_call_per_step(engine):
    den = engine.components.denoiser
    for steps in (1, 3, 8):
        before = den.calls
        result = engine.generate(GenerationRequest("a red circle", steps=steps, seed=1))
        assert den.calls - before == steps == result.denoiser_calls
        assert len(result.timings.steps) == steps


def test_prompt_embeddings_are_cached(engine):
    encoder = engine.components.text_encoder
    before = encoder.calls
    first = engine.generate(GenerationRequest("a green triangle, top left", seed=1, steps=2))
    second = engine.generate(GenerationRequest("a green triangle, top left", seed=2, steps=3))
    engine.generate(GenerationRequest("a yellow square", seed=2, steps=1))
    assert encoder.calls - before == 2
    assert not first.encoder_cache_hit and second.encoder_cache_hit


def test_cache_is_bounded_lru(tiny_lcm):
    engine = Engine(tiny_lcm, cache_size=2)
    for prompt in ("a", "b", "a", "c", "a", "b"):
        engine.encode(prompt)
    # "b" was evicted by "c" (least recently used), so it was encoded twice; "a" stayed
    assert engine.components.text_encoder.calls == 4


def test_same_seed_same_pixels_other_seed_other_pixels(engine):
    a = engine.generate(GenerationRequest("a cat", seed=42, steps=3))
    b = engine.generate(GenerationRequest("a cat", seed=42, steps=3))
    c = engine.generate(GenerationRequest("a cat", seed=43, steps=3))
    assert np.array_equal(_pixels(a), _pixels(b))
    assert np.abs(_pixels(a) - _pixels(c)).max() > 10


def test_batch_image_equals_single_image_of_its_seed(engine):
    batch = engine.generate(GenerationRequest("a dog", seed=100, steps=2, batch_size=3))
    assert batch.seeds == [100, 101, 102]
    single = engine.generate(GenerationRequest("a dog", seed=102, steps=2))
    assert np.abs(_pixels(batch)[2] - _pixels(single)[0]).max() <= 1


def test_random_seed_is_recorded_and_reproduces(engine):
    result = engine.generate(GenerationRequest("a horse", steps=2))
    assert result.request.seed is not None and result.seeds == [result.request.seed]
    again = engine.generate(GenerationRequest("a horse", steps=2, seed=result.request.seed))
    assert np.array_equal(_pixels(result), _pixels(again))


def test_native_size_and_defaults(engine):
    result = engine.generate(GenerationRequest("a moon", steps=1, seed=0))
    assert result.images[0].size == (64, 64)  # UNet sample_size 8 × VAE factor 8
    assert result.request.guidance_scale == 8.5
    timings = result.timings
    assert len(timings.steps) == 1 and min(timings.encode, timings.steps[0], timings.decode) > 0
    assert timings.encode + sum(timings.steps) + timings.decode <= timings.total


def test_cancel_stops_within_one_step(engine):
    cancel = threading.Event()
    seen = []

    def on_step(progress):
        seen.append(progress.step)
        if progress.step == 2:
            cancel.set()

    den = engine.components.denoiser
    before = den.calls
    with pytest.raises(GenerationCancelled):
        engine.generate(GenerationRequest("a cat", steps=8, seed=1), on_step=on_step, cancel=cancel)
    assert seen == [1, 2]
    assert den.calls - before == 2


def test_cancel_before_start_runs_nothing(engine):
    cancel = threading.Event()
    cancel.set()
    before = engine.components.denoiser.calls
    with pytest.raises(GenerationCancelled):
        engine.generate(GenerationRequest("a cat", seed=1), cancel=cancel)
    assert engine.components.denoiser.calls == before


def test_progress_reports_every_step_with_latents(engine):
    seen = []
    result = engine.generate(GenerationRequest("a cat", steps=4, seed=1, batch_size=2), on_step=seen.append)
    assert [p.step for p in seen] == [1, 2, 3, 4] and all(p.total == 4 for p in seen)
    elapsed = [p.elapsed for p in seen]
    assert all(a < b for a, b in zip(elapsed, elapsed[1:])) and elapsed[-1] <= result.timings.total
    assert seen[-1].denoised.shape == (2, 4, 8, 8)
    final = np.stack([np.asarray(im) for im in _decode_with(engine.components.decoder, seen[-1].denoised)])
    assert np.array_equal(final.astype(np.int16), _pixels(result))  # the last step's latents are the picture


def test_preview_uses_tiny_decoder(engine):
    seen = []
    engine.generate(GenerationRequest("a cat", steps=2, seed=1), on_step=seen.append)
    previews = engine.preview(seen[0].denoised)
    assert previews[0].size == (64, 64) and np.asarray(previews[0]).std() > 0
    tiny = engine.components.tiny_decoder
    assert np.array_equal(np.asarray(previews[0]), np.asarray(_decode_with(tiny, seen[0].denoised)[0]))


def _decode_with(decoder, latents):
    from lcm_desktop.engine.engine import to_pil

    return to_pil(decoder.decode(latents))


def test_preview_without_tiny_decoder_is_half_size(tiny_lcm):
    engine = Engine(tiny_lcm)
    seen = []
    engine.generate(GenerationRequest("a cat", steps=1, seed=1, width=128, height=128), on_step=seen.append)
    assert engine.preview(seen[0].denoised)[0].size == (64, 64)


def test_tiny_decoder_as_final_decoder(engine):
    full = engine.generate(GenerationRequest("a cat", steps=2, seed=4))
    fast = engine.generate(GenerationRequest("a cat", steps=2, seed=4, tiny_decoder=True))
    assert fast.images[0].size == full.images[0].size
    assert not np.array_equal(_pixels(full), _pixels(fast))


def test_tiny_decoder_requested_without_one(tiny_lcm):
    with pytest.raises(InvalidRequestError, match="tiny_decoder"):
        Engine(tiny_lcm).generate(GenerationRequest("a", tiny_decoder=True, steps=1, seed=0))


def test_bfloat16_option_stays_close_to_float32(tiny_lcm):
    fp32 = Engine(tiny_lcm).generate(GenerationRequest("a red circle", steps=2, seed=8))
    bf16_engine = Engine(TorchLoader(tiny_lcm, dtype="bfloat16"))
    bf16 = bf16_engine.generate(GenerationRequest("a red circle", steps=2, seed=8))
    assert bf16.backend == "torch:cpu:bfloat16"
    assert np.abs(_pixels(fp32) - _pixels(bf16)).mean() < 8


def test_unavailable_device_is_a_clear_error(tiny_lcm):
    with pytest.raises(BackendUnavailableError, match="not available"):
        Engine(TorchLoader(tiny_lcm, device="mps" if not torch.backends.mps.is_available() else "cuda")).load()


# -- bad models -------------------------------------------------------------------------------
@pytest.fixture
def model_copy(tiny_lcm, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(tiny_lcm, target)
    return target


def test_pickle_only_weights_are_refused(model_copy):
    weights = model_copy / "unet" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(UnsafeModelError, match="pickle.*safetensors"):
        Engine(model_copy).load()


def test_truncated_safetensors_is_reported_corrupt(model_copy):
    weights = model_copy / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelCorruptError, match="unet.*(corrupt|incomplete)"):
        Engine(model_copy).load()


def test_garbage_safetensors_header_is_reported_corrupt(model_copy):
    (model_copy / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(ModelCorruptError, match="vae"):
        Engine(model_copy).load()


def test_missing_component_and_not_a_model(model_copy, tmp_path):
    shutil.rmtree(model_copy / "vae")
    with pytest.raises(ModelFormatError, match="missing vae"):
        Engine(model_copy).load()
    with pytest.raises(ModelFormatError, match="model_index.json"):
        Engine(tmp_path).load()
