"""What one style-training step costs on the real SD1.5 architecture, against one UNet forward in the same run.

Random-weight SD1.5 UNet with the LCM guidance embedding (resources/configs), 512×512 (64×64 latents), batch 1,
a rank-16 PEFT LoRA on the attention projections (what `train-style --rank 16` trains), fp32, CPU.  Times, in
alternation after a warm-up: an inference forward (the reference), one LCF step (two forwards, one backward,
an optimiser and EMA step: `training.lcf.training_step`) and one plain noise-prediction step; and the peak
memory of each.  The ratios to the forward carry over to another machine: multiply them by its forward time.

    python benchmarks/bench_train.py [--rounds 2] [--size 512] [--rank 16] [--device cpu|mps|cuda]

On a Mac, ``tests/training/test_macos_sd15_step.py`` runs it on MPS (memory: the MPS driver's allocation).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import PeakRss, cpu_name, lcm_scheduler_config  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import json

    from diffusers import LCMScheduler, UNet2DConditionModel
    from peft import LoraConfig

    from lcm_desktop.core.paths import resource_path
    from lcm_desktop.training.lcf import EmaWeights, LcfSettings, Schedule, training_step

    config = json.loads(resource_path("configs", "sd15_unet_lcm.json").read_text())
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**{k: v for k, v in config.items() if not k.startswith("_")})
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=args.rank, lora_alpha=args.rank,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    device = torch.device(args.device)
    unet.to(device)
    params = [p for p in unet.parameters() if p.requires_grad]
    scheduler = LCMScheduler.from_config(lcm_scheduler_config())
    schedule = Schedule.from_scheduler(scheduler)
    ema = EmaWeights(params, 0.95)
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    latent = args.size // 8
    latents = torch.randn(1, 4, latent, latent, generator=torch.Generator().manual_seed(1)).to(device)
    text = torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(2)).to(device)
    generator = torch.Generator().manual_seed(3)
    cond = torch.randn(1, unet.config.time_cond_proj_dim).to(device)
    rss = PeakRss()
    used = _device_memory(device)

    def forward():
        with torch.no_grad():
            unet(latents, torch.tensor([499], device=device), encoder_hidden_states=text, timestep_cond=cond,
                 return_dict=False)

    def step(method):
        return lambda: training_step(unet, scheduler, schedule, ema, optimizer, LcfSettings(method=method), latents,
                                     text, generator)

    runs = {"UNet forward (inference)": forward, "LCF step": step("lcf"), "plain step": step("plain")}
    times: dict[str, list[float]] = {name: [] for name in runs}
    peaks: dict[str, int] = {}
    base = used() if used else rss.proc.memory_info().rss
    for name, run in runs.items():  # warm-up
        rss.reset()
        run()
        _sync(device)
        peaks[name] = (used() if used else rss.peak) - base
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    forward_s = statistics.median(times["UNet forward (inference)"])
    print(f"\n#### Style training step, SD1.5 {args.size}², rank {args.rank}, fp32 — {time.strftime('%Y-%m-%d')}, "
          f"{cpu_name()}, {torch.get_num_threads()} threads, device {device}, torch {torch.__version__}, "
          f"{platform.system()}\n")
    print(f"LoRA parameters: {sum(p.numel() for p in params) / 1e6:.2f} M; UNet parameters "
          f"{sum(p.numel() for p in unet.parameters()) / 1e6:.0f} M; weights resident before the runs "
          f"{base / 2**30:.1f} GiB.\n")
    print("| run | median s | × forward | memory above the loaded model (warm-up peak) |")
    print("|---|---|---|---|")
    for name in runs:
        median = statistics.median(times[name])
        print(f"| {name} | {median:.2f} | {median / forward_s:.2f} | {peaks[name] / 2**30:.2f} GiB |")
    return 0


def _sync(device: torch.device) -> None:
    if device.type == "mps":
        torch.mps.synchronize()
    elif device.type == "cuda":
        torch.cuda.synchronize()


def _device_memory(device: torch.device):
    """Bytes the accelerator holds now (None on the CPU, where the process's RSS is measured instead)."""
    if device.type == "mps":
        return torch.mps.driver_allocated_memory
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated
    return None


if __name__ == "__main__":
    raise SystemExit(main())
