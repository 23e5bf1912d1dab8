"""The 1-step live tier against LCM at 4 steps: one live update each, same run, same SD1.5-architecture modules.

A live update as the app runs it (bf16 modules, TAESD decode via ``tiny_decoder=True``, the prompt embedding
cached): the model's steps from ``core.presets.live_steps`` — 1 for a 1-step preset (Hyper-SD 1-step: TCD at
eta 1.0), 4 for LCM.  Random weights (``_common.build_modules``): the times, not the pictures, are the result.
Runs alternate after a warm-up, so the ratio compares like with like on a shared machine.

    python benchmarks/bench_live_tier.py [--rounds 3] [--sizes 256 512] [--threads N] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import PROMPT, build_modules, cpu_name, lcm_scheduler_config  # noqa: E402
from lcm_desktop.core.presets import preset_named  # noqa: E402
from lcm_desktop.core.request import GenerationRequest  # noqa: E402
from lcm_desktop.engine.engine import Engine  # noqa: E402
from lcm_desktop.engine.torch_backend import components_from_modules  # noqa: E402

LCM_STEPS = 4


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16
    unet, vae, taesd, text, tokenizer = (copy.deepcopy(m).to(args.device, dtype) if isinstance(m, torch.nn.Module)
                                         else m for m in build_modules(torch.float32))
    engine = Engine.from_components(components_from_modules("sd15-random-bf16", unet, vae, [(tokenizer, text)],
                                                            lcm_scheduler_config(), tiny_decoder=taesd))
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_name()
    print(f"### Live tier: 1 step (hyper-sd) vs LCM at {LCM_STEPS} — {time.strftime('%Y-%m-%d')}, {device}, "
          f"{args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}, bf16, TAESD decode\n")
    print("| size | LCM 4 steps (ms) | 1-step tier (ms) | 1-step / LCM | updates/s LCM → 1-step |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        requests = {name: GenerationRequest(PROMPT, steps=steps, sampler=name, width=size, height=size, seed=1,
                                            tiny_decoder=True)
                    for name, steps in (("lcm", LCM_STEPS), ("hyper-sd", 1))}
        assert preset_named("hyper-sd").one_step
        times: dict[str, list[float]] = {name: [] for name in requests}
        for round_ in range(args.rounds + 1):  # round 0 warms up
            for name, request in requests.items():
                started = time.perf_counter()
                engine.generate(request)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                if round_:
                    times[name].append(time.perf_counter() - started)
        lcm, one = (statistics.median(times[n]) for n in ("lcm", "hyper-sd"))
        print(f"| {size}² | {1000 * lcm:.0f} | {1000 * one:.0f} | **{one / lcm:.2f}** | "
              f"{1 / lcm:.3g} → {1 / one:.3g} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
