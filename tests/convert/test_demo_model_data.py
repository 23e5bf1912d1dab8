"""The demo model's data generator and analyzer (numpy + Pillow only; no model needed)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from convert.demo_model.analyzer import ATTRIBUTES, analyze
from convert.demo_model.data import (
    COLOURS,
    IMAGE_SIZE,
    Scene,
    held_out_scenes,
    held_out_triples,
    render,
    sample_batch,
    train_scenes,
    vocabulary,
)


def test_held_out_captions_never_appear_in_training():
    held = {s.caption for s in held_out_scenes()}
    train = {s.caption for s in train_scenes()}
    assert len(held) >= 200
    assert not held & train
    assert len(train) == len(train_scenes()) > 1000
    # Sampling training batches never draws a held-out caption either.
    _, captions = sample_batch(train_scenes(), 500, random.Random(0))
    assert not set(captions) & held


def test_every_held_out_word_is_seen_in_training():
    train_words = {w for s in train_scenes() for w in s.caption.replace(",", " ,").split()}
    for scene in held_out_scenes():
        assert set(scene.caption.replace(",", " ,").split()) <= train_words


def test_split_is_fixed():
    assert held_out_triples() == held_out_triples()
    assert ("red", "circle", "red") not in held_out_triples()
    assert len(held_out_triples()) == 24


def test_caption_and_vocabulary():
    scene = Scene("red", "circle", "blue", "large", "top left")
    assert scene.caption == "a large red circle on a blue background, top left"
    assert set(scene.caption.replace(",", " ,").split()) <= set(vocabulary())


def test_render_is_seeded_and_flat():
    scene = Scene("yellow", "triangle", "purple", "small", "center")
    a, b = render(scene, random.Random(5)), render(scene, random.Random(5))
    assert a.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    colours = {tuple(c) for c in a.reshape(-1, 3)}
    assert colours == {COLOURS["yellow"], COLOURS["purple"]}


def test_analyzer_recovers_generated_ground_truth():
    rng = random.Random(123)
    scenes = held_out_scenes() + train_scenes()
    hits = {a: 0 for a in ATTRIBUTES}
    n = 600
    for _ in range(n):
        scene = rng.choice(scenes)
        for attr, ok in analyze(render(scene, rng)).matches(scene).items():
            hits[attr] += ok
    for attr in ATTRIBUTES:
        assert hits[attr] / n >= 0.99, (attr, hits[attr] / n)


@pytest.mark.parametrize("form", ["pil", "uint8", "float"])
def test_analyzer_accepts_pipeline_outputs(form):
    scene = Scene("green", "square", "white", "large", "bottom right")
    arr = render(scene, random.Random(1))
    image = {"pil": Image.fromarray(arr), "uint8": arr, "float": arr.astype(np.float32) / 255.0}[form]
    verdict = analyze(image)
    assert all(verdict.matches(scene).values()), verdict


def test_analyzer_reads_a_blank_picture_as_no_shape():
    blank = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), COLOURS["blue"], dtype=np.uint8)
    verdict = analyze(blank)
    assert verdict.background == "blue"
    assert verdict.shape is None and verdict.shape_colour is None


def test_analyzer_is_not_fooled_by_wrong_shape():
    rng = random.Random(2)
    for shape, other in (("circle", "triangle"), ("square", "circle"), ("triangle", "square")):
        scene = Scene("red", shape, "black", "large", "center")
        verdict = analyze(render(scene, rng))
        assert verdict.shape == shape != other


def test_teacher_pure_noise_inputs_keep_x0_recoverable_and_leave_low_t_alone():
    torch = pytest.importorskip("torch")
    from convert.demo_model.models import build_ddpm_scheduler
    from convert.demo_model.teacher_stage import PURE_NOISE_FROM, PURE_NOISE_WEIGHT, noised_inputs

    torch.manual_seed(0)
    sched = build_ddpm_scheduler()
    x0, noise = torch.randn(400, 4, 8, 8), torch.randn(400, 4, 8, 8)
    t = torch.cat([torch.full((200,), 500), torch.full((200,), 950)])
    zt, target, weight = noised_inputs(x0, noise, t, sched.alphas_cumprod)
    low = slice(0, 200)
    assert torch.allclose(zt[low], sched.add_noise(x0[low], noise[low], t[low]), atol=1e-6)
    assert torch.equal(target[low], noise[low]) and bool((weight[low] == 1).all())
    pure = (zt == noise).flatten(1).all(1) & (t >= PURE_NOISE_FROM)
    assert 60 < int(pure.sum()) < 140  # about half of the high-t samples
    assert bool((weight.flatten()[pure] == PURE_NOISE_WEIGHT).all())
    a = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
    x0_hat = (zt - (1 - a).sqrt() * target) / a.sqrt()  # what DDIM reads from a perfect prediction
    assert torch.allclose(x0_hat, x0, atol=1e-3)
