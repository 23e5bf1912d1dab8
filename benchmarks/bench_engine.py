"""Our engine vs diffusers' LatentConsistencyModelPipeline on the same weights, in one process.

Random weights of the real SD1.5 architectures (UNet with a 256-wide guidance embedding, SD VAE,
CLIP ViT-L/14 text encoder with the real CLIP tokenizer, TAESD), 512×512, 4 steps, CPU.
Runs alternate (ours, diffusers, ours, …) after a warm-up, so both see the same machine state;
the result is the ratio ours/diffusers, which is what we compare across machines.

    python benchmarks/bench_engine.py [--rounds 2] [--size 512] [--markdown docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import PROMPT, PeakRss, build_modules, cpu_name, lcm_scheduler_config, psnr  # noqa: E402
from lcm_desktop.core.request import GenerationRequest  # noqa: E402
from lcm_desktop.engine.engine import Engine  # noqa: E402
from lcm_desktop.engine.torch_backend import components_from_modules  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--markdown", type=Path, default=None, help="append the table to this file")
    args = parser.parse_args()

    import diffusers
    from diffusers import LatentConsistencyModelPipeline, LCMScheduler

    diffusers.utils.logging.disable_progress_bar()
    rss = PeakRss()
    t0 = time.perf_counter()
    unet, vae, taesd, text, tokenizer = build_modules(torch.float32)
    scheduler_config = lcm_scheduler_config()
    print(f"built random-weight SD1.5 modules in {time.perf_counter() - t0:.1f}s", flush=True)

    def diffusers_pipe(decoder):
        return LatentConsistencyModelPipeline(
            vae=decoder, text_encoder=text, tokenizer=tokenizer, unet=unet,
            scheduler=LCMScheduler.from_config(scheduler_config), safety_checker=None, feature_extractor=None,
            requires_safety_checker=False,
        )

    ours = Engine.from_components(components_from_modules("sd15-random", unet, vae, [(tokenizer, text)],
                                                     scheduler_config, tiny_decoder=taesd))
    request = GenerationRequest(PROMPT, steps=args.steps, guidance_scale=8.5, width=args.size, height=args.size, seed=1)

    def run_ours(tiny):
        ours._cache.clear()  # a fair fight: both encode the prompt
        calls = ours.components.denoiser.calls
        result = ours.generate(GenerationRequest(**{**request.__dict__, "tiny_decoder": tiny}))
        return np.asarray(result.images[0]), ours.components.denoiser.calls - calls

    def run_diffusers(pipe):
        image = pipe(PROMPT, num_inference_steps=args.steps, guidance_scale=8.5, width=args.size, height=args.size,
                     generator=[torch.Generator().manual_seed(1)], output_type="np").images[0]
        return (image * 255).round().astype(np.uint8), None

    pipes = {"full": diffusers_pipe(vae), "tiny": diffusers_pipe(taesd)}
    rows = {}
    images = {}
    for decoder in ("full", "tiny"):
        tiny = decoder == "tiny"
        timings = {"ours": [], "diffusers": []}
        peaks = {"ours": 0, "diffusers": 0}
        runners = {
            "ours": functools.partial(run_ours, tiny),
            "diffusers": functools.partial(run_diffusers, pipes[decoder]),
        }
        for fn in runners.values():
            fn()  # warm-up
        for _ in range(args.rounds):
            for name, fn in runners.items():
                rss.reset()
                start = time.perf_counter()
                image, calls = fn()
                timings[name].append(time.perf_counter() - start)
                peaks[name] = max(peaks[name], rss.peak)
                images[(name, decoder)] = image
                if calls is not None:
                    rows.setdefault("calls", calls)
        rows[decoder] = {k: statistics.median(v) for k, v in timings.items()}
        rows[decoder + "_peak"] = peaks
        print(f"{decoder:>5} decoder: ours {rows[decoder]['ours']:.2f}s, diffusers {rows[decoder]['diffusers']:.2f}s, "
              f"ratio {rows[decoder]['ours'] / rows[decoder]['diffusers']:.3f}", flush=True)
    same_full = psnr(images[("ours", "full")], images[("diffusers", "full")])

    # bf16 + tiny decoder (an engine option), checked for image quality against fp32
    bf16_ok = torch.backends.mkldnn.is_available()
    bf16_time = bf16_psnr = None
    if bf16_ok:
        unet_bf, taesd_bf, text_bf = (m.to(torch.bfloat16) for m in (unet, taesd, text))
        fast = Engine.from_components(components_from_modules("sd15-random-bf16", unet_bf, vae, [(tokenizer, text_bf)],
                                                         scheduler_config, tiny_decoder=taesd_bf))
        fast_request = GenerationRequest(**{**request.__dict__, "tiny_decoder": True})
        fast.generate(fast_request)
        times = []
        for _ in range(args.rounds):
            fast._cache.clear()
            start = time.perf_counter()
            result = fast.generate(fast_request)
            times.append(time.perf_counter() - start)
        bf16_time = statistics.median(times)
        t = result.timings
        print(f"bf16 + tiny phases: encode {t.encode:.2f}s, steps {sum(t.steps):.2f}s, decode {t.decode:.2f}s",
              flush=True)
        bf16_psnr = psnr(np.asarray(result.images[0]), images[("ours", "tiny")])

    cpu = cpu_name()
    lines = [
        f"### Engine vs diffusers — {time.strftime('%Y-%m-%d')}, {cpu}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, diffusers {diffusers.__version__}",
        "",
        f"SD1.5 architecture, random weights, {args.size}×{args.size}, {args.steps} steps, guidance 8.5, "
        f"CPU fp32, median of {args.rounds} warm runs, alternating.",
        "",
        "| configuration | ours (s) | diffusers (s) | ours / diffusers | peak RSS ours / diffusers (GB) |",
        "|---|---|---|---|---|",
    ]
    for decoder, label in (("full", "full VAE decoder"), ("tiny", "tiny decoder (TAESD)")):
        r, p = rows[decoder], rows[decoder + "_peak"]
        lines.append(f"| {label} | {r['ours']:.2f} | {r['diffusers']:.2f} | {r['ours'] / r['diffusers']:.3f} | "
                     f"{p['ours'] / 1e9:.2f} / {p['diffusers'] / 1e9:.2f} |")
    baseline = rows["full"]["diffusers"]
    if bf16_time is not None:
        lines.append(f"| ours, bf16 + tiny decoder | {bf16_time:.2f} | {baseline:.2f} (diffusers default) | "
                     f"{bf16_time / baseline:.3f} ({baseline / bf16_time:.1f}× faster) | — |")
    lines += [
        "",
        f"- Denoiser calls per image: {rows['calls']} (one per step).",
        f"- Our image vs diffusers' (full decoder): PSNR {same_full:.1f} dB (inf = identical pixels).",
    ]
    if bf16_psnr is not None:
        lines.append(f"- bf16 + tiny vs fp32 + tiny: PSNR {bf16_psnr:.1f} dB (random weights, so a lower bound "
                     "on what a trained model shows).")
    text_out = "\n".join(lines) + "\n"
    print(text_out)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as handle:
            handle.write("\n" + text_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
