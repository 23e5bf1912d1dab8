"""The presets' rules: which preset a folder's scheduler means, names and labels, the strength rule, the live tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from lcm_desktop.core.errors import InvalidRequestError
from lcm_desktop.core.metadata import ImageParameters
from lcm_desktop.core.presets import (
    PRESETS,
    default_steps,
    find_preset,
    live_steps,
    preset_for_scheduler,
    preset_named,
    presets_for,
    schedule_length,
)
from lcm_desktop.core.request import GenerationRequest, fit_steps_to_strength


@pytest.mark.parametrize(("config", "recommended", "name"), [
    ({"_class_name": "LCMScheduler"}, None, "lcm"),
    ({"_class_name": "TCDScheduler"}, None, "tcd"),
    ({"_class_name": "TCDScheduler"}, "hyper-sd", "hyper-sd"),
    ({"_class_name": "DDIMScheduler", "timestep_spacing": "trailing"}, None, "ddim-trailing"),
    ({"_class_name": "EulerAncestralDiscreteScheduler", "timestep_spacing": "trailing"}, None, "euler-a-trailing"),
    ({"_class_name": "EulerDiscreteScheduler", "timestep_spacing": "trailing"}, None, "euler-trailing"),
    # an SD base's own scheduler (leading spacing): the LCM-LoRA it is run with
    ({"_class_name": "EulerDiscreteScheduler", "timestep_spacing": "leading"}, None, "lcm"),
    ({"_class_name": "PNDMScheduler"}, None, "lcm"),
    ({"_class_name": "EulerDiscreteScheduler", "timestep_spacing": "trailing"}, "no-such", "euler-trailing"),
])
def test_preset_from_a_scheduler_config(config, recommended, name):
    assert preset_for_scheduler(config, recommended).name == name


def test_names_aliases_and_a1111_labels():
    assert [preset_named(n).name for n in ("PCM", "turbo", "sdxs", "lightning", "Euler a", "TCD", "LCM")] == [
        "ddim-trailing", "euler-a-trailing", "euler-a-trailing", "euler-trailing", "euler-a-trailing", "tcd", "lcm"]
    assert find_preset("DPM++ 2M") is None and find_preset(None) is None
    with pytest.raises(InvalidRequestError, match="`sampler` must be one of lcm, tcd"):
        preset_named("dpm")
    assert len({p.name for p in PRESETS}) == len(PRESETS)


def test_presets_a_model_can_run_are_its_family_its_own_first():
    assert [p.name for p in presets_for(preset_named("tcd"))] == ["tcd", "lcm", "hyper-sd", "ddim-trailing"]
    assert [p.name for p in presets_for(preset_named("euler-trailing"))] == ["euler-trailing", "euler-a-trailing"]


@pytest.mark.parametrize(("sampler", "steps", "strength", "length"), [
    ("lcm", 4, 0.5, 4),  # LCM cuts the distillation schedule instead (set_timesteps(strength=))
    ("tcd", 4, 1.0, 4),
    ("tcd", 2, 0.5, 4), ("tcd", 4, 0.6, 7), ("euler-a-trailing", 1, 0.5, 2), ("ddim-trailing", 2, 0.7, 3),
    ("euler-a-trailing", 1, 0.3, 4), ("ddim-trailing", 3, 0.3, 10),
])
def test_schedule_length_leaves_exactly_the_steps(sampler, steps, strength, length):
    n = schedule_length(preset_named(sampler), steps, strength)
    assert n == length
    if strength < 1 and sampler != "lcm":  # diffusers' get_timesteps keeps int(n * strength) of n: the steps
        assert min(int(n * strength), n) == steps and int((n - 1) * strength) < steps


def test_a_strength_too_small_for_any_schedule_is_one_line():
    with pytest.raises(InvalidRequestError, match="`strength` must be at least 0.004 with 4 steps"):
        schedule_length(preset_named("ddim-trailing"), 4, 0.002)
    # TCD: at most the 50 points of its distillation schedule (diffusers' TCDScheduler refuses more)
    assert schedule_length(preset_named("tcd"), 4, 0.08) == 50
    with pytest.raises(InvalidRequestError, match="`strength` must be at least 0.1 with 5 steps and the tcd"):
        schedule_length(preset_named("tcd"), 5, 0.08)


def test_live_tier_runs_one_step_only_where_the_preset_was_distilled_for_it():
    from lcm_desktop.core.model_info import ModelDefaults, ModelInfo, ModelKind

    def info(preset, steps):
        return ModelInfo(Path("m"), "m", ModelKind.DIFFUSERS, "sd", ModelDefaults(steps=steps), False,
                         preset=preset_named(preset))

    assert live_steps(info("hyper-sd", 1)) == 1 and live_steps(info("euler-a-trailing", 2)) == 1
    assert live_steps(info("lcm", 4)) == 4 and live_steps(info("tcd", 6)) == 6  # the Generate steps
    assert live_steps(info("lcm", 4), preset_named("hyper-sd")) == 1  # a 1-step preset picked on an LCM
    assert default_steps(info("lcm", 6), preset_named("ddim-trailing")) == 4  # the chosen preset's own default
    assert default_steps(info("lcm", 6)) == 6


def test_strength_to_steps_per_preset():
    assert fit_steps_to_strength(8, 0.1, 50) == (5, fit_steps_to_strength(8, 0.1, 50)[1])  # LCM: 5 points left
    assert fit_steps_to_strength(8, 0.1, 50, "ddim-trailing") == (8, "")  # DDIM: an 80-point schedule, its last 8
    # TCD draws its schedule from the 50-point distillation schedule: LCM's rule
    assert fit_steps_to_strength(8, 0.1, 50, "tcd") == fit_steps_to_strength(8, 0.1, 50)
    with pytest.raises(InvalidRequestError, match="`strength` must be at least"):
        fit_steps_to_strength(4, 0.002, 50, "euler-a-trailing")


def test_request_sampler_and_eta_are_validated_and_named():
    request = GenerationRequest("x", sampler="Euler a")
    assert request.sampler == "euler-a-trailing" and request.eta is None
    assert GenerationRequest("x", sampler="tcd", eta=1).eta == 1.0
    for bad in (1.5, -0.1, float("nan"), True, "0.3"):
        with pytest.raises(InvalidRequestError, match="`eta` must be a number from 0 to 1"):
            GenerationRequest("x", eta=bad)
    with pytest.raises(InvalidRequestError, match="`sampler`"):
        GenerationRequest("x", sampler=3)


def test_eta_round_trips_through_the_png_text_and_json():
    params = ImageParameters("a cat", steps=4, sampler="TCD", seed=1, eta=0.6)
    assert "Sampler: TCD" in params.to_text() and "Eta: 0.6" in params.to_text()
    assert ImageParameters.parse(params.to_text()).eta == 0.6
    assert ImageParameters.from_json(params.to_json()) == params
    assert ImageParameters.from_json(params.to_json().replace('"eta": 0.6', '"eta": 7')).eta is None
    assert ImageParameters.from_json(params.to_json().replace('"eta": 0.6', '"eta": "x"')) is None
