"""What a run checks before step 1, what it keeps after a late failure, and what it leaves alone (issue 25).

Captions that straddle 75 tokens, a text-encoder LoRA chosen for words the tokenizer spells letter by letter,
a ``<lora:…>`` tag or a negative seed refused before anything trains, a failing publish or a non-finite loss
that keep the finished steps, and torch's global RNG untouched.
"""

from __future__ import annotations

import pytest
import torch

from lcm_desktop.core.errors import InvalidRequestError, TrainingError
from lcm_desktop.training import trainer as trainer_module
from lcm_desktop.training.captions import CAPTION_TOKENS, caption_ids, new_words
from lcm_desktop.training.checkpoint import load_checkpoint
from lcm_desktop.training.lcf import EmaWeights, LcfSettings, Schedule, training_step
from lcm_desktop.training.trainer import TrainConfig, checkpoint_path, train


def _config(pictures, model, **kw):
    base = dict(name="guarded", steps=3, rank=4, lr=1e-2, batch=2, trigger="red", caption="a {} square",
                checkpoint_every=100, preview_every=0, text_encoder=False)
    return TrainConfig(pictures, model, **{**base, **kw})


def _caption(pictures, index: int, text: str) -> None:
    (pictures / f"pic{index}.txt").write_text(text, encoding="utf-8")


def _tokenizer(model):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(model / "tokenizer")


@pytest.mark.parametrize("text_encoder", [False, True])
def test_captions_over_75_tokens_beside_short_ones_train_cut_with_a_note(tiny_lcm, pictures, text_encoder):
    long = " ".join(["red circle"] * 50)  # 100 tokens
    _caption(pictures, 0, long)
    ids = caption_ids(_tokenizer(tiny_lcm), [long, "a red square"])
    assert ids.ids.shape == (2, CAPTION_TOKENS + 2) and ids.cut == 1
    result = train(_config(pictures, tiny_lcm, steps=1, text_encoder=text_encoder))
    assert result.steps == 1 and result.text_encoder is text_encoder
    assert result.notes == ("1 caption longer than 75 tokens was cut to the first 75.",)


def test_a_text_encoder_lora_is_chosen_for_words_spelled_letter_by_letter(tiny_lcm, pictures):
    tokenizer = _tokenizer(tiny_lcm)
    assert new_words(tokenizer, ["a wug square", "a red circle on a blue background"]) == ("wug",)
    assert new_words(tokenizer, ["a red circle, top left"]) == ()
    known = train(_config(pictures, tiny_lcm, steps=1, text_encoder=None))
    new = train(_config(pictures, tiny_lcm, steps=1, text_encoder=None, trigger="wug", name="wug"))
    assert (known.text_encoder, new.text_encoder) == (False, True)
    from safetensors import safe_open

    with safe_open(str(new.output), "pt") as f:
        assert any(k.startswith("text_encoder.") for k in f.keys())


def test_a_style_tag_in_a_caption_or_a_negative_seed_is_refused_before_step_1(tiny_lcm, pictures):
    with pytest.raises(InvalidRequestError) as err:
        _config(pictures, tiny_lcm, seed=-1)
    assert err.value.field == "seed"
    _caption(pictures, 0, "a red square <lora:other:0.5>")
    steps = []
    with pytest.raises(TrainingError, match=r"<lora:other>.*remove the tag"):
        train(_config(pictures, tiny_lcm), on_progress=steps.append)
    assert steps == [] and not checkpoint_path("guarded").exists()


def test_a_failing_publish_keeps_every_finished_step_and_resume_publishes(tiny_lcm, pictures, monkeypatch):
    real = trainer_module._Run._publish

    def disk_full(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trainer_module._Run, "_publish", disk_full)
    with pytest.raises(TrainingError, match="after step 3.*checkpoint is kept"):
        train(_config(pictures, tiny_lcm))
    assert load_checkpoint(checkpoint_path("guarded")).step == 3
    monkeypatch.setattr(trainer_module._Run, "_publish", real)
    steps = []
    result = train(_config(pictures, tiny_lcm, resume=True), on_progress=steps.append)
    assert (result.resumed_from, result.steps, steps) == (3, 3, []) and result.output.is_file()
    assert not checkpoint_path("guarded").exists()


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_lcm, pictures, monkeypatch):
    real, calls = trainer_module.training_step, []

    def nan_at_3(*args):
        calls.append(1)
        return float("nan") if len(calls) == 3 else real(*args)

    monkeypatch.setattr(trainer_module, "training_step", nan_at_3)
    seen = []
    with pytest.raises(TrainingError, match=r"loss was nan at step 3; the checkpoint of step 2 is kept"):
        train(_config(pictures, tiny_lcm, steps=5), on_progress=lambda p: seen.append(p.step))
    assert seen == [1, 2] and load_checkpoint(checkpoint_path("guarded")).step == 2


def test_a_non_finite_loss_changes_no_weight():
    layer = torch.nn.Linear(4, 4)
    params = list(layer.parameters())
    before = [p.detach().clone() for p in params]
    ema = EmaWeights(params, 0.5)
    optimizer = torch.optim.AdamW(params, lr=0.1)

    class Unet:  # the plain loss needs only a call and a config
        config = type("C", (), {"time_cond_proj_dim": None})()

        def __call__(self, x, t, encoder_hidden_states, timestep_cond, return_dict):
            return (layer(x.transpose(1, 3)).transpose(1, 3) * float("nan"),)

    schedule = Schedule.from_scheduler(_scheduler())
    loss = training_step(Unet(), None, schedule, ema, optimizer, LcfSettings("plain"), torch.zeros(1, 4, 2, 2),
                         torch.zeros(1, 77, 4), torch.Generator().manual_seed(0))
    assert loss != loss  # NaN
    assert all(torch.equal(a, b) for a, b in zip(before, params)) and not optimizer.state


def _scheduler():
    from diffusers import LCMScheduler

    return LCMScheduler()


def test_training_leaves_the_global_torch_rng_alone(tiny_lcm, pictures):
    state = torch.get_rng_state()
    train(_config(pictures, tiny_lcm, steps=2, text_encoder=True))
    assert torch.equal(torch.get_rng_state(), state)
