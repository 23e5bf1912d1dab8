"""One training run: a folder of pictures + a model → a style (a LoRA file), with progress, previews, cancel, resume.

    result = train(TrainConfig(folder, model_folder, "pink", steps=1000), on_progress=print, cancel=event)

1. check the name, the seed and where the result goes (before anything heavy loads);
2. load the model (``engine.torch_backend``, float32, on ``training_device``) and the pictures (``data``); refuse
   captions that name a style and build the preview's request now, so nothing the last step needs fails after
   the first (``captions``);
3. encode every picture once (the VAE posterior's mean and std: each step samples it) and tokenize every caption
   once, one way (``captions``: plain text, cut at 75 tokens); without a text-encoder LoRA encode them once too;
4. LoRA on the UNet's attention projections (PEFT), or the whole UNet (``full``); on the text encoder too when
   asked or when captions hold words new to its tokenizer; initialised from the run's own generator (the global
   torch RNG is never drawn from or set);
5. resume from ``<app cache>/training/<name>/checkpoint.safetensors`` when asked (``checkpoint``);
6. per step: cancel check → ``lcf.training_step`` → progress (loss, s/step, ETA) → every N steps a checkpoint
   and a 4-step preview through the engine's own LCM loop, with the weights being trained;
7. publish the EMA weights (θ⁻) as the style file (``style_file``; ``full``: a model folder beside the imported
   models), then drop the checkpoint.  A failure after step 1 (preview, publish) saves the checkpoint first; a
   non-finite loss stops the run with the last good one.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..core.atomic import publish_dir
from ..core.errors import LcmError, TrainingCancelled, TrainingError
from ..core.model_files import copy_confined_tree, data_files
from ..core.paths import AppPaths
from . import checkpoint as ckpt
from .captions import caption_ids, check_captions, encode_ids, new_words
from .config import (  # noqa: F401 — re-exported: the run's records live in config.py
    TRAINING_DIR,
    TrainConfig,
    TrainProgress,
    TrainResult,
    checkpoint_path,
    default_lr,
    output_path,
)
from .data import TrainingSet, load_training_set
from .lcf import EmaWeights, LcfSettings, Schedule, curriculum_factor, training_step
from .style_file import StyleInfo, lora_tensors, style_metadata, write_style

LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")  # CLIP's attention, as diffusers' TE LoRAs
PREVIEW_STEPS = 4
ETA_WINDOW = 20  # steps whose mean time gives the ETA (the first steps are slow: warm-up)
class _NonFinite(TrainingError):
    """The loss went NaN or infinite: the run stops with its last good checkpoint."""


def training_device(requested: str | None = None) -> torch.device:
    """Where training runs: MPS on a Mac, CUDA where present, else the CPU (the engine's one rule)."""
    from ..engine.torch_backend import select_device

    return select_device(requested)


def train(config: TrainConfig, *, paths: AppPaths | None = None,
          on_progress: Callable[[TrainProgress], None] | None = None,
          cancel: threading.Event | None = None) -> TrainResult:
    """Run (or resume) the training described by ``config``; see the module docstring for the steps."""
    paths = paths or AppPaths.default()
    target = output_path(config, paths)
    if target.exists() and not config.force:
        raise TrainingError(f"{'A model' if config.full else 'A style'} named {config.name!r} exists already "
                            f"({target}); choose another name or pass --force to replace it.")
    state_file = checkpoint_path(config.name, paths)
    if state_file.exists() and not (config.resume or config.force):
        raise TrainingError(f"An unfinished training of {config.name!r} exists ({state_file.parent}); pass --resume "
                            "to continue it or --force to start over.")
    if config.full:  # the base folder is copied at the end: a link out of it or a FIFO is refused now, not then
        data_files(config.model, skip_dirs={"unet", "lcm_lora"})
    run = _Run(config, paths, state_file)
    return run.execute(on_progress, cancel)


class _Run:
    """The state of one run (model, data, optimiser); ``execute`` is the loop."""

    def __init__(self, config: TrainConfig, paths: AppPaths, state_file: Path):
        from diffusers import LCMScheduler

        from ..engine.torch_backend import load_torch_components

        self.config, self.paths, self.state_file = config, paths, state_file
        self.device = training_device(config.device)
        self.generator = torch.Generator().manual_seed(config.seed)  # the run's only random stream
        self.components = load_torch_components(config.model, device=str(self.device), dtype="float32")
        if self.components.family != "sd":
            raise TrainingError(f"{self.components.name} is an SDXL-class model; styles can be trained for SD1.5-"
                                "class models (and the built-in one) only.")
        self.size = config.size or self.components.native_size[0]
        self.data: TrainingSet = load_training_set(config.folder, self.size, template=config.caption,
                                                   trigger=config.trigger)
        check_captions(self.data.captions)
        self.preview_request = self._preview_request()  # what the last step needs, checked before the first
        tokenizer = self.components.text_encoder.pairs[0][0]
        self.new_words = new_words(tokenizer, self.data.captions)
        self.text_encoder = (bool(self.new_words) and not config.full if config.text_encoder is None
                             else config.text_encoder)
        self.ids = caption_ids(tokenizer, self.data.captions)
        self.notes = tuple(n for n in (self.ids.note,) if n)
        self.unet = self.components.denoiser.unet
        self.scheduler = LCMScheduler.from_config(self.components.scheduler_config)
        self.schedule = Schedule.from_scheduler(self.scheduler)
        self.settings = LcfSettings(config.method, config.loss, config.guidance, config.ema)
        self.mean, self.std, self.text, self.caption_index = self._encode_data()
        self.encoder = self.components.text_encoder.pairs[0][1] if self.text_encoder else None
        self.params = self._trainable()
        self.ema = EmaWeights(self.params, config.ema)
        self.lr = config.lr or default_lr(sum(p.numel() for p in self.unet.parameters()))
        self.optimizer = torch.optim.AdamW(self.params, lr=self.lr, weight_decay=1e-2 if not config.full else 0.0)
        self.step, self.losses = 0, []

    @property
    def fingerprint(self) -> dict[str, Any]:
        return {**self.config.fingerprint, "text_encoder": self.text_encoder}

    # -- setting up ------------------------------------------------------------------------------
    def _preview_request(self):
        """The preview's request (the last step's image), built now so a bad seed or prompt stops the run here."""
        from ..core.request import GenerationRequest

        return GenerationRequest(self.config.preview_prompt or self.data.captions[0], steps=PREVIEW_STEPS,
                                 guidance_scale=sum(self.config.guidance) / 2, width=self.size, height=self.size,
                                 seed=self.config.seed)

    @torch.no_grad()
    def _encode_data(self):
        """Posterior mean and std of every picture (N, 4, h, w), scaled; caption states (C, 77, D), all captions
        tokenized one way (``captions``)."""
        from ..engine.engine import image_tensor

        vae = self.components.decoder.vae
        scale = float(getattr(vae.config, "scaling_factor", 1.0) or 1.0)
        means, stds = [], []
        for image in self.data.images:
            dist = vae.encode(image_tensor(image).to(self.device)).latent_dist
            means.append(dist.mean * scale)
            stds.append(dist.std * scale)
        text = encode_ids(self.components.text_encoder.pairs[0][1], self.ids.ids, self.device)
        index = self.ids.index(self.data.captions)
        return torch.cat(means).clone(), torch.cat(stds).clone(), text.clone(), index

    def _trainable(self) -> list[torch.nn.Parameter]:
        self.unet.requires_grad_(False)
        if self.config.full:
            self.unet.requires_grad_(True)
        else:
            from peft import LoraConfig

            with torch.random.fork_rng(devices=[]):  # PEFT's layer init draws from the global RNG: put it back
                self.unet.add_adapter(LoraConfig(r=self.config.rank, lora_alpha=self.config.rank,
                                                 init_lora_weights="gaussian", target_modules=list(LORA_TARGETS)))
            self._init_lora(self.unet)
        self.unet.train()
        params = [p for p in self.unet.parameters() if p.requires_grad]
        if self.encoder is not None:
            from peft import LoraConfig, inject_adapter_in_model

            self.encoder.requires_grad_(False)  # (transformers' own add_adapter wants a newer PEFT)
            with torch.random.fork_rng(devices=[]):
                inject_adapter_in_model(LoraConfig(r=self.config.rank, lora_alpha=self.config.rank,
                                                   init_lora_weights="gaussian",
                                                   target_modules=list(TEXT_LORA_TARGETS)), self.encoder)
            self._init_lora(self.encoder)
            self.encoder.train()
            params += [p for p in self.encoder.parameters() if p.requires_grad]
        return params

    @torch.no_grad()
    def _init_lora(self, module: torch.nn.Module) -> None:
        """PEFT's "gaussian" init (A ~ N(0, 1/r), B = 0), drawn from the run's generator."""
        for name, p in module.named_parameters():
            if "lora_A" in name:
                p.copy_(torch.randn(tuple(p.shape), generator=self.generator) / self.config.rank)
            elif "lora_B" in name:
                p.zero_()

    def _resume(self) -> int:
        if not self.state_file.exists():
            return 0
        if self.config.force and not self.config.resume:
            shutil.rmtree(self.state_file.parent, ignore_errors=True)
            return 0
        saved = ckpt.load_checkpoint(self.state_file)
        wanted = self.fingerprint
        if saved.fingerprint != wanted:
            changed = sorted(k for k in wanted if saved.fingerprint.get(k) != wanted[k])
            raise TrainingError(f"The checkpoint of {self.config.name!r} was made with other settings "
                                f"({', '.join(changed)}); use the same ones, or pass --force to start over.")
        if saved.step > self.config.steps:
            raise TrainingError(f"The checkpoint of {self.config.name!r} is at step {saved.step}; ask for more "
                                f"than {saved.step} steps to continue it.")
        ckpt.restore(saved, params=self.params, ema=self.ema.shadow, optimizer=self.optimizer,
                     generator=self.generator)
        self.losses = list(saved.losses)
        return saved.step

    # -- the loop ----------------------------------------------------------------------------------
    def execute(self, on_progress, cancel) -> TrainResult:
        started = time.perf_counter()
        resumed_from = self.step = self._resume()
        try:
            self._loop(on_progress, cancel)
            output = self._publish()
        except (TrainingCancelled, _NonFinite):
            raise
        except BaseException as exc:  # a late failure (preview, publish, disk, Ctrl-C twice): keep the steps
            if self.step > resumed_from:
                self.save_checkpoint()
                if isinstance(exc, Exception):
                    why = str(exc) if isinstance(exc, LcmError) else f"{type(exc).__name__}: {exc}"
                    raise TrainingError(f"Training of {self.config.name!r} failed after step {self.step} "
                                        f"({why[:300].rstrip('.')}); its checkpoint is kept: run it again with "
                                        "resume to finish.") from exc
            raise
        shutil.rmtree(self.state_file.parent, ignore_errors=True)
        return TrainResult(output, self.step, resumed_from, time.perf_counter() - started,
                           self.losses[-1] if self.losses else float("nan"), self.data.summary, tuple(self.losses),
                           self.notes, self.text_encoder)

    def _loop(self, on_progress, cancel) -> None:
        total, recent = self.config.steps, deque(maxlen=ETA_WINDOW)
        while self.step < total:
            if cancel is not None and cancel.is_set():
                self.save_checkpoint()
                raise TrainingCancelled(f"Training of {self.config.name!r} stopped at step {self.step} of {total}; "
                                        "its checkpoint is kept, so starting it again with resume continues there.",
                                        self.step, total)
            step_start = time.perf_counter()
            loss = self._one_step()
            if not math.isfinite(loss):  # the step was not applied: the weights are still those of self.step
                kept = "nothing was kept"
                if self.step:
                    self.save_checkpoint()
                    kept = f"the checkpoint of step {self.step} is kept (resume it with a lower learning rate)"
                raise _NonFinite(f"Training of {self.config.name!r} stopped: the loss was {loss} at step "
                                 f"{self.step + 1}; {kept}.")
            self.step += 1
            self.losses.append(loss)
            recent.append(time.perf_counter() - step_start)
            per_step = sum(recent) / len(recent)
            if self.step % self.config.checkpoint_every == 0 and self.step < total:
                self.save_checkpoint()
            preview = None
            every = self.config.preview_every
            if (every and self.step % every == 0) or self.step == total:
                preview = self.preview()
            if on_progress is not None:
                on_progress(TrainProgress(self.step, total, loss, per_step, preview))

    def _one_step(self) -> float:
        g = self.generator
        idx = torch.randint(0, len(self.data), (self.config.batch,), generator=g)
        eps = torch.randn(tuple(self.mean[idx].shape), generator=g).to(self.device)
        latents = self.mean[idx] + self.std[idx] * eps
        text = self._text(self.caption_index[idx])
        schedule = self.schedule
        if self.config.curriculum:
            schedule = schedule.coarsened(curriculum_factor(self.step, self.config.steps))
        return training_step(self.unet, self.scheduler, schedule, self.ema, self.optimizer, self.settings,
                             latents, text, g)

    def _text(self, caption_index: torch.Tensor):
        """The batch's caption states (B, 77, D): precomputed, or (text-encoder LoRA) how to encode them now —
        from the same token ids either way."""
        if self.encoder is None:
            return self.text[caption_index.to(self.device)]
        ids = self.ids.ids[caption_index]
        return lambda: encode_ids(self.encoder, ids, self.device)

    def save_checkpoint(self) -> Path:
        return ckpt.save_checkpoint(self.state_file, step=self.step, params=self.params, ema=self.ema.shadow,
                                    optimizer=self.optimizer, generator=self.generator,
                                    fingerprint=self.fingerprint, losses=self.losses)

    def preview(self) -> Any:
        """A 4-step image of the preview prompt through the engine's LCM loop, with the weights being trained."""
        from ..engine.engine import Engine

        self.unet.eval()
        if self.encoder is not None:
            self.encoder.eval()
        try:
            result = Engine.from_components(self.components).generate(self.preview_request)
        finally:
            self.unet.train()
            if self.encoder is not None:
                self.encoder.train()
        return result.images[0]

    # -- the result ------------------------------------------------------------------------------
    def _publish(self) -> Path:
        target = output_path(self.config, self.paths)
        with self.ema.swapped():  # the EMA weights θ⁻ are the result, as for the built-in model's distillation
            if self.config.full:
                return self._publish_model(target)
            info = StyleInfo(self.config.name, self.components.name, self.components.family,
                             self.config.trigger or "", self.step, self.config.rank, self.config.method,
                             self.size, len(self.data), self.config.loss)
            return write_style(target, lora_tensors(self.unet, self.encoder), style_metadata(info, self.data.captions),
                               replace=self.config.force)

    def _publish_model(self, target: Path) -> Path:
        """``full``: a copy of the base model folder with the trained UNet, renamed into place when complete."""

        def build(work: Path) -> None:
            copy_confined_tree(self.config.model, work, skip_dirs={"unet", "lcm_lora"})  # no link out of it
            self.unet.save_pretrained(work / "unet", safe_serialization=True)

        try:
            publish_dir(target, build, replace=self.config.force)
        except OSError as exc:
            raise TrainingError(f"Cannot move the trained model into {target} ({exc.strerror or exc}); free some "
                                "disk space or choose another name.") from exc
        return target
