"""A live update with a scribble control: our engine vs diffusers' control pipelines, in one process.

One live update = the control picture fitted and preprocessed, ``steps`` UNet calls (each with a ControlNet
call beside it, or the adapter's features computed once), decode: what the app runs when a line is drawn.
Same random-weight SD1.5 modules (``_common.build_modules``) and the same random SD1.5-shaped ControlNet and
T2I-Adapter (loaded by the engine from disk, as the app loads them), the same size, steps, guidance, seed
and control picture; runs alternate after a warm-up, so the ratios compare like with like on a shared machine.
Both decode with the full VAE; ours keeps the prompt embedding cached (live use).  Then the built-in model with
its own scribble ControlNet at 64×64.

    python benchmarks/bench_control.py [--size 512] [--steps 4] [--rounds 3] [--device cpu|cuda]
                                       [--dtype float32|float16|bfloat16] [--markdown docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import PROMPT, build_modules, cpu_name, lcm_scheduler_config, psnr  # noqa: E402
from lcm_desktop.core.control import ControlSpec  # noqa: E402
from lcm_desktop.core.paths import resource_path  # noqa: E402
from lcm_desktop.core.request import GenerationRequest  # noqa: E402
from lcm_desktop.engine.engine import Engine  # noqa: E402
from lcm_desktop.engine.loaders import TorchLoader  # noqa: E402
from lcm_desktop.engine.torch_backend import components_from_modules  # noqa: E402

SECTION = "## Live update with a scribble control"
GUIDANCE, SEED = 8.5, 1


def scribble(size: int):
    """A hand-drawn-looking scribble: a ring and a zigzag, white on black."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    width = max(1, size // 128)
    draw.ellipse((size // 5, size // 5, size * 3 // 5, size * 3 // 5), outline=(255, 255, 255), width=2 * width)
    draw.line([(size * i // 8, size * (6 + i % 2) // 8) for i in range(1, 8)], fill=(255, 255, 255), width=width)
    return image


def timed(runners: dict, rounds: int) -> dict[str, tuple[float, np.ndarray]]:
    for fn in runners.values():
        fn()  # warm-up
    seconds = {name: [] for name in runners}
    images = {}
    for _ in range(rounds):
        for name, fn in runners.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            images[name] = fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds[name].append(time.perf_counter() - start)
    return {name: (statistics.median(s), images[name]) for name, s in seconds.items()}


def sd15_rows(args) -> list[str]:
    from diffusers import (
        ControlNetModel,
        LCMScheduler,
        StableDiffusionAdapterPipeline,
        StableDiffusionControlNetPipeline,
        T2IAdapter,
    )

    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[args.dtype]
    unet, vae, _taesd, text, tokenizer = build_modules(torch.float32)
    torch.manual_seed(1)
    controlnet = ControlNetModel.from_unet(unet, load_weights_from_unet=False)  # random; the same cost as trained
    adapter = T2IAdapter(in_channels=3, channels=[320, 640, 1280, 1280], num_res_blocks=2, downscale_factor=8)
    folders = Path(tempfile.mkdtemp(prefix="bench-control-"))
    controlnet.save_pretrained(folders / "controlnet", safe_serialization=True)
    adapter.save_pretrained(folders / "adapter", safe_serialization=True)
    unet, vae, text, controlnet, adapter = (m.to(args.device, dtype) for m in (unet, vae, text, controlnet, adapter))
    config = lcm_scheduler_config()
    engine = Engine.from_components(components_from_modules("sd15-random", unet, vae, [(tokenizer, text)], config))
    parts = dict(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, safety_checker=None,
                 feature_extractor=None, requires_safety_checker=False)
    pipes = {"controlnet": StableDiffusionControlNetPipeline(controlnet=controlnet,
                                                             scheduler=LCMScheduler.from_config(config), **parts),
             "adapter": StableDiffusionAdapterPipeline(adapter=adapter, scheduler=LCMScheduler.from_config(config),
                                                       **parts)}
    image, size, steps = scribble(args.size), args.size, args.steps
    rows = []
    for kind, pipe in pipes.items():
        pipe.set_progress_bar_config(disable=True)
        spec = ControlSpec(image, folders / kind)
        request = GenerationRequest(PROMPT, steps=steps, guidance_scale=GUIDANCE, width=size, height=size, seed=SEED,
                                    controls=(spec,))

        def ours(request=request):
            return np.asarray(engine.generate(request).images[0])

        def theirs(pipe=pipe):
            out = pipe(prompt=PROMPT, image=image, num_inference_steps=steps, guidance_scale=GUIDANCE,
                       height=size, width=size, generator=[torch.Generator("cpu").manual_seed(SEED)],
                       output_type="np").images[0]
            return (out * 255).round().astype(np.uint8)

        plain = GenerationRequest(PROMPT, steps=steps, guidance_scale=GUIDANCE, width=size, height=size, seed=SEED)
        runs = timed({"ours": ours, "diffusers": theirs,
                      "ours_plain": lambda plain=plain: np.asarray(engine.generate(plain).images[0])}, args.rounds)
        (o, oi), (d, di), (p, _) = runs["ours"], runs["diffusers"], runs["ours_plain"]
        diff = int(np.abs(oi.astype(np.int16) - di.astype(np.int16)).max())
        rows.append(f"| SD1.5 arch. {size}², {args.dtype} | {kind} | {steps} | **{1000 * o:.0f}** | {1000 * d:.0f} | "
                    f"**{o / d:.3f}** | {1000 * p:.0f} (+{100 * (o / p - 1):.0f} %) | PSNR {psnr(oi, di):.1f} dB, "
                    f"max {diff} |")
        print(rows[-1], flush=True)
    return rows


def demo_row(args) -> list[str]:
    """The built-in model with its own scribble ControlNet, as the app runs it on a CPU (fp32)."""
    from diffusers import ControlNetModel, LatentConsistencyModelPipeline, StableDiffusionControlNetPipeline

    folder, control = resource_path("models", "lcm-demo"), resource_path("models", "lcm-demo-scribble")
    if not control.is_dir():
        return []
    engine = Engine(TorchLoader(folder, device=args.device))
    lcm = LatentConsistencyModelPipeline.from_pretrained(folder).to(args.device)
    pipe = StableDiffusionControlNetPipeline(vae=lcm.vae, text_encoder=lcm.text_encoder, tokenizer=lcm.tokenizer,
                                             unet=lcm.unet, scheduler=lcm.scheduler,
                                             controlnet=ControlNetModel.from_pretrained(control).to(args.device),
                                             safety_checker=None, feature_extractor=None,
                                             requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    prompt, image = "a large red circle on a blue background, top left", scribble(64)
    guidance = engine.defaults.guidance_scale
    request = GenerationRequest(prompt, steps=4, guidance_scale=guidance, seed=SEED,
                                controls=(ControlSpec(image, control),))
    plain = GenerationRequest(prompt, steps=4, guidance_scale=guidance, seed=SEED)

    def theirs():
        out = pipe(prompt=prompt, image=image, num_inference_steps=4, guidance_scale=guidance, height=64, width=64,
                   generator=[torch.Generator("cpu").manual_seed(SEED)], output_type="np").images[0]
        return (out * 255).round().astype(np.uint8)

    runs = timed({"ours": lambda: np.asarray(engine.generate(request).images[0]), "diffusers": theirs,
                  "ours_plain": lambda: np.asarray(engine.generate(plain).images[0])}, max(args.rounds, 10))
    (o, oi), (d, di), (p, _) = runs["ours"], runs["diffusers"], runs["ours_plain"]
    diff = int(np.abs(oi.astype(np.int16) - di.astype(np.int16)).max())
    row = (f"| built-in 64², float32 | its scribble ControlNet | 4 | **{1000 * o:.1f}** | {1000 * d:.1f} | "
           f"**{o / d:.3f}** | {1000 * p:.1f} (+{100 * (o / p - 1):.0f} %) | PSNR {psnr(oi, di):.1f} dB, max {diff} |")
    print(row, flush=True)
    return [row]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--markdown", type=Path, default=None, help="replace this section of the file")
    args = parser.parse_args(argv)
    args.dtype = args.dtype or ("float16" if args.device.startswith("cuda") else "float32")
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    machine = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_name()
    rows = sd15_rows(args) + demo_row(args)
    table = "\n".join([
        f"### Scribble control — {time.strftime('%Y-%m-%d')}, {machine}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), median of {args.rounds} after a warm-up",
        "",
        "| model | control | steps | ours ms | diffusers ms | ratio | ours without the control | ours vs diffusers |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    print(table)
    if args.markdown is not None:
        text = args.markdown.read_text(encoding="utf-8")
        body = f"{SECTION}\n\n`python benchmarks/bench_control.py` (see its docstring for what is timed).\n\n{table}\n"
        if SECTION in text:
            head, _, rest = text.partition(SECTION)
            tail = rest[rest.find("\n## ") + 1:] if "\n## " in rest else ""
            text = head + body + ("\n" + tail if tail else "")
        else:
            text = text.rstrip("\n") + "\n\n" + body
        args.markdown.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
