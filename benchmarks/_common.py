"""What the benchmarks share: the random-weight SD1.5 modules, peak-RSS sampling, PSNR, the machine's name."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import threading
from pathlib import Path

import numpy as np
import psutil
import torch

from lcm_desktop.core.clip_vocab import clip_vocab_from_bpe, open_clip_bpe_file, write_tokenizer_files
from lcm_desktop.core.paths import resource_path

PROMPT = "a photograph of an astronaut riding a horse on the moon"


class PeakRss:
    """Samples this process's RSS every 20 ms; ``peak`` is the highest seen since ``reset()``."""

    def __init__(self):
        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def reset(self):
        self.peak = self.proc.memory_info().rss


def build_modules(dtype: torch.dtype):
    """Random-weight (seed 0) SD1.5 UNet (LCM guidance embedding), SD VAE, TAESD, CLIP ViT-L/14 and its tokenizer."""
    from diffusers import AutoencoderKL, AutoencoderTiny, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    configs = resource_path("configs")
    torch.manual_seed(0)

    def load(name):
        config = json.loads((configs / name).read_text())
        return {k: v for k, v in config.items() if not k.startswith("_")}

    unet = UNet2DConditionModel(**load("sd15_unet_lcm.json")).eval()
    vae = AutoencoderKL(**load("sd15_vae.json")).eval()
    taesd = AutoencoderTiny(**load("taesd.json")).eval()
    text = CLIPTextModel(CLIPTextConfig(**load("clip_vit_l14_text.json"))).eval()
    tok_dir = Path(tempfile.mkdtemp()) / "tokenizer"
    write_tokenizer_files(tok_dir, *clip_vocab_from_bpe(open_clip_bpe_file()))
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    return unet, vae, taesd, text, tokenizer


def lcm_scheduler_config() -> dict:
    return json.loads(resource_path("configs", "lcm_scheduler.json").read_text())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or platform.machine()
