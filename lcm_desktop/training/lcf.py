"""Latent Consistency Fine-tuning (LCF, arXiv 2310.04378 §4.3, Algorithm 4): the loss and one training step.

Derivation.  An LCM is a consistency function on the latent PF-ODE of a diffusion model,

    f_θ(z_t, w, c, t) = c_skip(t)·z_t + c_out(t)·x̂0_θ(z_t, w, c, t),
    x̂0_θ = (z_t − σ_t·ε_θ(z_t, w, c, t)) / α_t            (epsilon parameterisation; α_t = √ᾱ_t, σ_t = √(1−ᾱ_t))

with c_skip(0) = 1, c_out(0) = 0 (the boundary condition f(z_0) = z_0; ``LCMScheduler`` uses
c_skip = σ_d²/((10t)² + σ_d²), c_out = 10t/√((10t)² + σ_d²), σ_d = 0.5).  Consistency *distillation* (LCD,
Algorithm 1) asks f_θ to agree along one trajectory of the teacher's ODE across a skipping step of k = 20
training timesteps on the 50-point schedule t_n ∈ {19, 39, …, 999}: ẑ_{t_n} is one DDIM step of the teacher
from z_{t_{n+k}}, and the loss is d(f_θ(z_{t_{n+k}}, w, c, t_{n+k}), f_θ⁻(ẑ_{t_n}, w, c, t_n)) with θ⁻ an EMA of θ.

LCF replaces the teacher's ODE step by the exact forward process of the data (consistency *training*, Song et
al. 2023, adapted to latents): for a real image's latents z and ONE noise ε ~ N(0, I),

    z_{t_{n+k}} = α_{t_{n+k}}·z + σ_{t_{n+k}}·ε        z_{t_n} = α_{t_n}·z + σ_{t_n}·ε

lie on the same (ε-conditional) trajectory, an unbiased one-sample estimate of the ODE step as k → 0.  So

    L(θ, θ⁻) = E_{z, c, w, n, ε} [ d( f_θ(z_{t_{n+k}}, w, c, t_{n+k}),  f_θ⁻(z_{t_n}, w, c, t_n) ) ],
    θ⁻ ← stopgrad(μ·θ⁻ + (1 − μ)·θ)

with d the squared L2 distance or the pseudo-Huber √(‖a − b‖² + c²) − c (c = 0.001, as diffusers' LCD scripts),
n ~ U{0 … N−1}, and the guidance w sampled as in distillation: w ~ U[w_min, w_max] and fed through the UNet's
guidance embedding (``time_cond_proj_dim``) when it has one.  No teacher, no classifier-free guidance: the model's
own EMA, evaluated on the earlier point of the same noisy trajectory, is the target.  For a LoRA, θ are the LoRA
weights and θ⁻ their EMA (the base weights are shared and frozen).  As in diffusers' LCD scripts, t_n = t_{n+k} − k
is clamped at 0 (where c_skip ≈ 1, so the target is ≈ the real latents).

``method="plain"`` is the baseline the paper argues against: ordinary denoising (noise-prediction MSE at a uniform
t ∈ {0 … 999}) on the same data, which pulls the model back towards a many-step diffusion model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..engine.sampler import guidance_embedding

HUBER_C = 0.001
METHODS = ("lcf", "plain")
LOSSES = ("l2", "huber")


@dataclass(frozen=True)
class LcfSettings:
    """The loss's knobs.  ``guidance``: the range of guidance scales g sampled per image (embedded as w = g − 1,
    the engine's convention); ``ema``: μ of the target network."""

    method: str = "lcf"
    loss: str = "l2"
    guidance: tuple[float, float] = (2.0, 8.0)
    ema: float = 0.95


@dataclass(frozen=True)
class Schedule:
    """The LCM's skipping-step schedule on the training timesteps.

    ``points``: (N,) long, t_{n+k} for n = 0 … N−1 ({19, 39, …, 999} for 1000 steps, N = 50, k = 20);
    ``alphas_cumprod``: (T,) float32, the scheduler's ᾱ.
    """

    points: torch.Tensor
    skip: int
    alphas_cumprod: torch.Tensor
    prediction_type: str

    @classmethod
    def from_scheduler(cls, scheduler) -> Schedule:
        """``scheduler``: an ``LCMScheduler`` (its ``original_inference_steps`` fix the schedule)."""
        cfg = scheduler.config
        skip = int(cfg.num_train_timesteps) // int(cfg.original_inference_steps)
        points = torch.arange(1, int(cfg.original_inference_steps) + 1) * skip - 1
        return cls(points, skip, scheduler.alphas_cumprod.float(), str(cfg.prediction_type))

    def coarsened(self, factor: int) -> Schedule:
        """Every ``factor``-th point (a skip of ``factor``·k): the coarse stages of the curriculum below."""
        count = len(self.points) // factor
        points = torch.arange(1, count + 1) * self.skip * factor - 1
        return Schedule(points, self.skip * factor, self.alphas_cumprod, self.prediction_type)

    def alpha_sigma(self, t: torch.Tensor, ndim: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
        """α_t = √ᾱ_t and σ_t = √(1 − ᾱ_t) for timesteps ``t`` (B,), shaped (B, 1, 1, 1) to broadcast."""
        a = self.alphas_cumprod[t.cpu()].view(-1, *([1] * (ndim - 1)))
        return a.sqrt(), (1 - a).sqrt()


# The coarse-to-fine curriculum (``curriculum=True``; Song & Dhariwal 2023, "Improved techniques for training
# consistency models", grow the number of discretisation steps during consistency training): (share of the run,
# coarsening factor).  Consistency is learned from t ≈ 0 upwards, one skip at a time; on the 50-point schedule
# that is 50 links to cross, on a 5-point one 5.  The last stage is the LCM's own schedule (k = 20).
CURRICULUM = ((0.25, 10), (0.25, 5), (0.25, 2), (0.25, 1))


def curriculum_factor(step: int, total: int) -> int:
    """The coarsening factor of the curriculum at ``step`` (0-based) of ``total``."""
    done = 0.0
    for share, factor in CURRICULUM:
        done += share
        if step < done * total:
            return factor
    return 1


@dataclass(frozen=True)
class Pair:
    """The two noised latents of one LCF sample (all (B, …) on the latents' device)."""

    late: torch.Tensor  # z_{t_{n+k}}
    early: torch.Tensor  # z_{t_n}
    t_late: torch.Tensor  # (B,) long
    t_early: torch.Tensor  # (B,) long
    noise: torch.Tensor  # the one ε both were made from


def make_pair(schedule: Schedule, latents: torch.Tensor, index: torch.Tensor, noise: torch.Tensor) -> Pair:
    """Noise the clean ``latents`` (B, 4, h, w) to t_{n+k} and t_n with the SAME ``noise``; ``index``: n, (B,)."""
    t_late = schedule.points[index.cpu()]
    t_early = (t_late - schedule.skip).clamp(min=0)
    a_late, s_late = (x.to(latents) for x in schedule.alpha_sigma(t_late, latents.ndim))
    a_early, s_early = (x.to(latents) for x in schedule.alpha_sigma(t_early, latents.ndim))
    return Pair(a_late * latents + s_late * noise, a_early * latents + s_early * noise,
                t_late.to(latents.device), t_early.to(latents.device), noise)


def consistency_function(unet, scheduler, schedule: Schedule, z_t: torch.Tensor, t: torch.Tensor,
                         text: torch.Tensor, timestep_cond: torch.Tensor | None) -> torch.Tensor:
    """f(z_t, w, c, t) = c_skip·z_t + c_out·x̂0, with ``LCMScheduler``'s scalings and its ``step``'s x̂0."""
    model_output = unet(z_t, t, encoder_hidden_states=text, timestep_cond=timestep_cond, return_dict=False)[0]
    c_skip, c_out = scheduler.get_scalings_for_boundary_condition_discrete(t.float())
    c_skip, c_out = (x.view(-1, 1, 1, 1).to(z_t) for x in (c_skip, c_out))
    return c_skip * z_t + c_out * predicted_original(schedule, model_output, z_t, t)


def predicted_original(schedule: Schedule, model_output: torch.Tensor, z_t: torch.Tensor,
                       t: torch.Tensor) -> torch.Tensor:
    """x̂0 from the UNet's output, as ``LCMScheduler.step`` computes it (epsilon, sample or v_prediction)."""
    alpha, sigma = (x.to(z_t) for x in schedule.alpha_sigma(t, z_t.ndim))
    if schedule.prediction_type == "epsilon":
        return (z_t - sigma * model_output) / alpha
    if schedule.prediction_type == "sample":
        return model_output
    if schedule.prediction_type == "v_prediction":
        return alpha * z_t - sigma * model_output
    raise ValueError(f"prediction_type {schedule.prediction_type!r} is not epsilon, sample or v_prediction")


def distance(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean L2 (squared error) or pseudo-Huber (c = 0.001) distance; a scalar."""
    if kind == "l2":
        return torch.nn.functional.mse_loss(a.float(), b.float())
    if kind == "huber":
        return (torch.sqrt((a.float() - b.float()) ** 2 + HUBER_C**2) - HUBER_C).mean()
    raise ValueError(f"loss {kind!r} is not one of {LOSSES}")


def guidance_condition(unet, guidance: torch.Tensor) -> torch.Tensor | None:
    """The UNet's ``timestep_cond`` for guidance scales g (B,): the engine's embedding of w = g − 1, or None."""
    dim = unet.config.time_cond_proj_dim
    if dim is None:
        return None
    param = next(unet.parameters())
    return guidance_embedding(guidance - 1.0, dim).to(param.device, param.dtype)


class EmaWeights:
    """θ⁻: an exponential moving average of the trained parameters (the LoRA's, or the whole UNet's)."""

    def __init__(self, params: Sequence[torch.nn.Parameter], decay: float):
        self.params = list(params)
        self.decay = decay
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        for s, p in zip(self.shadow, self.params):
            s.lerp_(p.detach(), 1.0 - self.decay)

    @contextmanager
    def swapped(self) -> Iterator[None]:
        """Inside: the module's parameters hold θ⁻ (their values are swapped, not copied twice)."""
        with torch.no_grad():
            for s, p in zip(self.shadow, self.params):
                tmp = p.detach().clone()
                p.copy_(s)
                s.copy_(tmp)
        try:
            yield
        finally:
            with torch.no_grad():
                for s, p in zip(self.shadow, self.params):
                    tmp = p.detach().clone()
                    p.copy_(s)
                    s.copy_(tmp)


@dataclass(frozen=True)
class Draw:
    """The random choices of one step (drawn from the run's generator, so a resumed run repeats them)."""

    index: torch.Tensor  # (B,) long: n, or for "plain" the timestep itself
    noise: torch.Tensor  # (B, 4, h, w)
    guidance: torch.Tensor  # (B,) float: g


def draw(schedule: Schedule, settings: LcfSettings, latents: torch.Tensor, generator: torch.Generator) -> Draw:
    """n (or t for plain), ε and g for a batch of clean latents; drawn on the CPU, moved to the latents' device."""
    b = latents.shape[0]
    high = len(schedule.points) if settings.method == "lcf" else len(schedule.alphas_cumprod)
    index = torch.randint(0, high, (b,), generator=generator)
    noise = torch.randn(tuple(latents.shape), generator=generator).to(latents)
    lo, hi = settings.guidance
    guidance = lo + (hi - lo) * torch.rand((b,), generator=generator)
    return Draw(index, noise, guidance)


Text = torch.Tensor | Callable[[], torch.Tensor]  # the captions' states (B, 77, D), or how to encode them now


def _states(text: Text) -> torch.Tensor:
    """A trained text encoder (LoRA) encodes inside the step, once with θ⁻ and once with θ."""
    return text() if callable(text) else text


def lcf_loss(unet, scheduler, schedule: Schedule, ema: EmaWeights, settings: LcfSettings,
             latents: torch.Tensor, text: Text, d: Draw) -> torch.Tensor:
    """d(f_θ(z_{t_{n+k}}, w, c, t_{n+k}), f_θ⁻(z_{t_n}, w, c, t_n)) for clean ``latents`` (B, 4, h, w) and
    ``text`` (B, 77, D)."""
    pair = make_pair(schedule, latents, d.index, d.noise)
    cond = guidance_condition(unet, d.guidance)
    with torch.no_grad(), ema.swapped():  # first: the swap writes into the parameters autograd would save
        target = consistency_function(unet, scheduler, schedule, pair.early, pair.t_early, _states(text), cond)
    online = consistency_function(unet, scheduler, schedule, pair.late, pair.t_late, _states(text), cond)
    return distance(online, target, settings.loss)


def plain_loss(unet, schedule: Schedule, settings: LcfSettings, latents: torch.Tensor, text: Text,
               d: Draw) -> torch.Tensor:
    """The baseline: MSE of the UNet's output against its diffusion target at a uniform t (ε, or v)."""
    t = d.index
    alpha, sigma = (x.to(latents) for x in schedule.alpha_sigma(t, latents.ndim))
    noisy = alpha * latents + sigma * d.noise
    out = unet(noisy, t.to(latents.device), encoder_hidden_states=_states(text),
               timestep_cond=guidance_condition(unet, d.guidance), return_dict=False)[0]
    target = {"epsilon": d.noise, "v_prediction": alpha * d.noise - sigma * latents, "sample": latents}
    if schedule.prediction_type not in target:
        raise ValueError(f"prediction_type {schedule.prediction_type!r} is not epsilon, sample or v_prediction")
    return distance(out, target[schedule.prediction_type], "l2")


def training_step(unet, scheduler, schedule: Schedule, ema: EmaWeights, optimizer, settings: LcfSettings,
                  latents: torch.Tensor, text: Text, generator: torch.Generator) -> float:
    """One optimiser step of ``settings.method`` on a batch; updates θ⁻ after it.  Returns the loss; a non-finite
    loss (or gradient) changes nothing and is returned as it is (the caller stops)."""
    d = draw(schedule, settings, latents, generator)
    if settings.method == "lcf":
        loss = lcf_loss(unet, scheduler, schedule, ema, settings, latents, text, d)
    elif settings.method == "plain":
        loss = plain_loss(unet, schedule, settings, latents, text, d)
    else:
        raise ValueError(f"method {settings.method!r} is not one of {METHODS}")
    if not torch.isfinite(loss):
        return float(loss.detach())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(ema.params, 1.0)
    if not torch.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        return float("nan")
    optimizer.step()
    ema.update()
    return float(loss.detach())
