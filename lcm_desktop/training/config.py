"""A training run's inputs and outputs: ``TrainConfig`` (the CLI's flags, checked), the defaults that learn a new
word (``default_lr``, docs/STYLES.md), progress and result records, and where a run's files live."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InvalidRequestError
from ..core.paths import AppPaths
from ..core.request import MAX_SEED
from . import checkpoint as ckpt
from .captions import check_captions
from .lcf import LOSSES, METHODS
from .style_file import check_style_name, style_path

TRAINING_DIR = "training"
SMALL_UNET = 100_000_000  # parameters: the built-in model's UNet has 3.2 M, SD1.5's 860 M
LR_SMALL, LR_LARGE = 1e-3, 1e-4  # docs/STYLES.md "Defaults": measured on the built-in model; SD1.5: the usual


def default_lr(unet_parameters: int) -> float:
    """The learning rate when none is asked for: 1e-3 for a small UNet (the built-in model: it learns a new
    word in 1,000 steps, docs/STYLES.md), 1e-4 (the usual rate for a LoRA on SD1.5) for a large one."""
    return LR_SMALL if unet_parameters < SMALL_UNET else LR_LARGE


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; checked in ``__post_init__`` (the fields are the CLI's flags)."""

    folder: Path
    model: Path
    name: str
    steps: int = 1000
    rank: int = 8
    lr: float | None = None  # None: default_lr(the UNet's size)
    batch: int = 4
    size: int | None = None  # None: the model's native size
    trigger: str | None = None
    caption: str | None = None
    method: str = "lcf"
    loss: str = "l2"
    full: bool = False
    text_encoder: bool | None = None  # a LoRA on the text encoder too; None: when captions hold new words
    curriculum: bool = True  # LCF: coarse-to-fine skips (lcf.CURRICULUM), ending on the LCM's k = 20
    resume: bool = False
    force: bool = False
    checkpoint_every: int = 100
    preview_every: int = 100
    preview_prompt: str | None = None  # None: the first picture's caption
    seed: int = 0
    guidance: tuple[float, float] = (2.0, 8.0)
    ema: float = 0.95
    device: str | None = None

    def __post_init__(self) -> None:
        check_style_name(self.name)
        for field_name, low, high in (("steps", 1, 1_000_000), ("rank", 1, 256), ("batch", 1, 256),
                                      ("checkpoint_every", 1, 1_000_000), ("preview_every", 0, 1_000_000)):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidRequestError(field_name, value, f"a whole number from {low} to {high}")
        if self.lr is not None and not (isinstance(self.lr, float | int) and 0 < self.lr <= 1):
            raise InvalidRequestError("lr", self.lr, "a learning rate greater than 0 and at most 1")
        if self.size is not None and (self.size < 64 or self.size % 8):
            raise InvalidRequestError("size", self.size, "a multiple of 8 of at least 64")
        if self.method not in METHODS:
            raise InvalidRequestError("method", self.method, f"one of {', '.join(METHODS)}")
        if not (isinstance(self.ema, float | int) and 0 <= self.ema < 1):
            raise InvalidRequestError("ema", self.ema, "a decay from 0 up to (not including) 1")
        if self.full and self.text_encoder:
            raise InvalidRequestError("text_encoder", True, "used without full (it adds a LoRA to the text encoder)")
        if self.loss not in LOSSES:
            raise InvalidRequestError("loss", self.loss, f"one of {', '.join(LOSSES)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise InvalidRequestError("seed", self.seed, f"a whole number from 0 to {MAX_SEED}")
        if self.preview_prompt is not None:
            check_captions([self.preview_prompt])

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must share with the run that resumes it."""
        return {"model": str(self.model), "method": self.method, "loss": self.loss, "rank": self.rank,
                "full": self.full, "text_encoder": self.text_encoder, "curriculum": self.curriculum,
                "size": self.size, "batch": self.batch}


@dataclass(frozen=True)
class TrainProgress:
    """After each step.  ``preview``: a PIL image every ``preview_every`` steps (and at the end), else None."""

    step: int
    total: int
    loss: float
    seconds_per_step: float
    preview: Any = None

    @property
    def eta_seconds(self) -> float:
        return self.seconds_per_step * (self.total - self.step)


@dataclass(frozen=True)
class TrainResult:
    output: Path  # the style file (or, with ``full``, the model folder)
    steps: int
    resumed_from: int
    seconds: float
    final_loss: float
    data: str  # TrainingSet.summary
    losses: tuple[float, ...] = field(default=(), repr=False)
    notes: tuple[str, ...] = ()  # one line each, for the front end (captions cut at 75 tokens)
    text_encoder: bool = False  # whether the style holds a text-encoder LoRA (asked for, or chosen for new words)


def checkpoint_path(name: str, paths: AppPaths | None = None) -> Path:
    paths = paths or AppPaths.default()
    return paths.cache / TRAINING_DIR / check_style_name(name) / ckpt.CHECKPOINT_FILE


def output_path(config: TrainConfig, paths: AppPaths) -> Path:
    """The style file, or with ``full`` the model folder ``<app data>/models/<name>``."""
    from ..models.store import IMPORTED_DIR

    return paths.data / IMPORTED_DIR / config.name if config.full else style_path(config.name, paths)
