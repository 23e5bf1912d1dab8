"""The LCF loss: the schedule, the pair built from ONE noise, the boundary condition, and that it trains."""

from __future__ import annotations

import pytest
import torch
from diffusers import LCMScheduler

from lcm_desktop.core.paths import AppPaths
from lcm_desktop.training import lcf
from lcm_desktop.training.trainer import TrainConfig, _Run, checkpoint_path


def _scheduler():
    return LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                        original_inference_steps=50, timestep_spacing="leading")


def test_schedule_is_the_lcm_skipping_schedule():
    schedule = lcf.Schedule.from_scheduler(_scheduler())
    assert schedule.skip == 20
    assert schedule.points.tolist() == list(range(19, 1000, 20))  # what LCMScheduler's set_timesteps draws from
    sched = _scheduler()
    sched.set_timesteps(4)
    assert set(sched.timesteps.tolist()) <= set(schedule.points.tolist())


def test_pair_uses_the_same_noise_at_two_adjacent_points():
    schedule = lcf.Schedule.from_scheduler(_scheduler())
    z = torch.randn(3, 4, 8, 8)
    noise = torch.randn(3, 4, 8, 8)
    pair = lcf.make_pair(schedule, z, torch.tensor([0, 10, 49]), noise)
    assert pair.t_late.tolist() == [19, 219, 999]
    assert pair.t_early.tolist() == [0, 199, 979]  # t_{n+k} - k, clamped at 0
    for zt, t in ((pair.late, pair.t_late), (pair.early, pair.t_early)):
        alpha, sigma = schedule.alpha_sigma(t)
        torch.testing.assert_close(zt - alpha * z, sigma * noise, atol=1e-5, rtol=1e-5)


def test_lcf_loss_feeds_both_calls_one_noise(tiny_lcm, pictures, monkeypatch):
    """White box: record what lcf_loss gives the consistency function and recover ε from each noised latent."""
    run = _Run(TrainConfig(pictures, tiny_lcm, "pair", trigger="pink", batch=2),
               AppPaths.default(), checkpoint_path("pair"))
    calls = []
    real = lcf.consistency_function

    def recording(unet, scheduler, schedule, z_t, t, text, cond):
        calls.append((z_t.detach().clone(), t.clone(), torch.is_grad_enabled()))
        return real(unet, scheduler, schedule, z_t, t, text, cond)

    monkeypatch.setattr(lcf, "consistency_function", recording)
    z = run.mean[:2]
    d = lcf.draw(run.schedule, run.settings, z, torch.Generator().manual_seed(3))
    lcf.lcf_loss(run.unet, run.scheduler, run.schedule, run.ema, run.settings, z, run.text[:1].repeat(2, 1, 1), d)
    (early, t_early, grad_early), (late, t_late, grad_late) = calls
    assert (t_late - t_early).tolist() == [20, 20] or t_early.min() == 0
    assert not grad_early and grad_late  # the target (EMA, earlier point) under no_grad; the online one trains
    for zt, t in ((early, t_early), (late, t_late)):
        alpha, sigma = run.schedule.alpha_sigma(t)
        torch.testing.assert_close((zt - alpha * z) / sigma, d.noise, atol=1e-4, rtol=1e-4)


def test_consistency_function_meets_the_boundary_condition(tiny_lcm, pictures):
    run = _Run(TrainConfig(pictures, tiny_lcm, "boundary", trigger="pink"), AppPaths.default(),
               checkpoint_path("boundary"))
    z = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        f0 = lcf.consistency_function(run.unet, run.scheduler, run.schedule, z, torch.tensor([0]), run.text[:1], None)
        f999 = lcf.consistency_function(run.unet, run.scheduler, run.schedule, z, torch.tensor([999]),
                                        run.text[:1], None)
    torch.testing.assert_close(f0, z, atol=2e-3, rtol=0)  # c_skip(0) = 1, c_out(0) = 0
    assert (f999 - z).abs().mean() > 0.1  # far from the boundary the UNet decides


@pytest.mark.parametrize(("method", "full", "factor"), [("lcf", True, 0.8), ("lcf", False, 1.0), ("plain", True, 0.8)])
def test_loss_decreases_over_30_steps(tiny_lcm, pictures, method, full, factor):
    """The loss on a fixed batch (32 fixed draws of n, ε, w over the 4 pictures) falls after 30 training steps:
    by a fifth for the whole UNet, at all for a rank-4 LoRA (a random tiny UNet has little a LoRA can fix)."""
    run = _Run(TrainConfig(pictures, tiny_lcm, "falls", trigger="pink", batch=4, lr=1e-3 if full else 1e-2, rank=4,
                           method=method, full=full, curriculum=False, text_encoder=False), AppPaths.default(),
               checkpoint_path("falls"))
    z, text = run.mean.repeat(8, 1, 1, 1), run.text[run.caption_index].repeat(8, 1, 1)
    fixed = lcf.draw(run.schedule, run.settings, z, torch.Generator().manual_seed(7))

    def loss() -> float:
        with torch.no_grad():
            if method == "lcf":
                return float(lcf.lcf_loss(run.unet, run.scheduler, run.schedule, run.ema, run.settings, z, text, fixed))
            return float(lcf.plain_loss(run.unet, run.schedule, run.settings, z, text, fixed))

    before = loss()
    for _ in range(30):
        run._one_step()
    after = loss()
    assert after < factor * before, (before, after)


def test_huber_and_l2_distances():
    a, b = torch.zeros(2, 4), torch.full((2, 4), 0.5)
    assert lcf.distance(a, b, "l2").item() == pytest.approx(0.25)
    assert lcf.distance(a, b, "huber").item() == pytest.approx((0.5**2 + 1e-6) ** 0.5 - 1e-3, rel=1e-5)
    with pytest.raises(ValueError, match="loss 'l1'"):
        lcf.distance(a, b, "l1")


def test_the_curriculum_ends_on_the_lcm_schedule():
    from lcm_desktop.training.lcf import curriculum_factor

    schedule = lcf.Schedule.from_scheduler(_scheduler())
    factors = [curriculum_factor(step, 100) for step in range(100)]
    assert factors[0] == 10 and factors[-1] == 1 and factors == sorted(factors, reverse=True)
    coarse = schedule.coarsened(10)
    assert coarse.skip == 200 and coarse.points.tolist() == [199, 399, 599, 799, 999]
    assert set(coarse.points.tolist()) <= set(schedule.points.tolist())
