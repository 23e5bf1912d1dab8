"""Masked "live update": our engine vs diffusers' StableDiffusionInpaintPipeline (+ LCMScheduler), in one process.

A picture of ``--picture``² with a ``--mask-side``² mask (a square off centre), strength 1, ``--steps`` steps, on
the random-weight SD1.5 modules (``_common.build_modules``), two ways:

* **whole picture**: generated at the picture's size (ours ``InpaintArea.WHOLE``; diffusers ``height=width=P``);
* **only masked**: a box around the mask (padding ``--padding``) generated at ``--size``² and pasted back
  (ours ``InpaintArea.MASKED``; diffusers ``padding_mask_crop``, which crops and overlays the same way).

Three runners, alternating after a warm-up: ours as the app runs a live update (the device's half precision —
fp16 on CUDA, bf16 on a CPU — TAESD encoder and decoder, the prompt embedding cached), ours with the full VAE
at the same precision, and diffusers at that precision with its full VAE (the prompt encoded every call).  Then
the overlay: outside the mask our pixels are the picture's, exactly.

    python benchmarks/bench_inpaint.py [--device auto] [--picture 1024] [--mask-side 256] [--size 512]
                                       [--steps 4] [--rounds 3] [--markdown docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
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

from benchmarks._common import PROMPT, build_modules, cpu_name, lcm_scheduler_config  # noqa: E402
from lcm_desktop.core.mask import Inpaint, InpaintArea  # noqa: E402
from lcm_desktop.core.request import GenerationRequest  # noqa: E402
from lcm_desktop.engine.engine import Engine  # noqa: E402
from lcm_desktop.engine.torch_backend import components_from_modules  # noqa: E402

SECTION = "## Inpainting (masked live update)"
GUIDANCE, SEED = 8.5, 1


def picture_and_mask(side: int, mask_side: int):
    from PIL import Image, ImageDraw

    ramp = np.linspace(0, 255, side, dtype=np.float32)
    rgb = np.stack([np.broadcast_to(ramp, (side, side)), np.broadcast_to(ramp[:, None], (side, side)),
                    np.full((side, side), 120.0)], axis=-1)
    picture = Image.fromarray(rgb.astype(np.uint8))
    ImageDraw.Draw(picture).ellipse((side // 5, side // 4, side * 3 // 5, side * 13 // 20), fill=(230, 40, 30))
    mask = Image.new("L", (side, side), 0)
    x0, y0 = side * 5 // 8 - mask_side // 2, side * 3 // 8 - mask_side // 2
    ImageDraw.Draw(mask).rectangle((x0, y0, x0 + mask_side - 1, y0 + mask_side - 1), fill=255)
    return picture, mask


def timed(fn, rounds: int) -> tuple[float, np.ndarray]:
    seconds, image = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        image = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # (the PIL result already waited for the GPU; this is belt and braces)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), image


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--picture", type=int, default=1024)
    parser.add_argument("--mask-side", type=int, default=256)
    parser.add_argument("--size", type=int, default=512, help="the generation size of 'only masked'")
    parser.add_argument("--padding", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()

    import diffusers
    from diffusers import LCMScheduler, StableDiffusionInpaintPipeline

    diffusers.utils.logging.disable_progress_bar()
    from lcm_desktop.engine.torch_backend import select_device

    device = select_device(args.device)  # auto: mps, then cuda, then cpu
    half = torch.bfloat16 if device.type == "cpu" else torch.float16
    started, load_before = time.perf_counter(), os.getloadavg()
    *modules, tokenizer = build_modules(torch.float32)
    unet, vae, taesd, text = (m.to(device, half) for m in modules)
    config = lcm_scheduler_config()
    engine = Engine.from_components(components_from_modules("sd15-random", unet, vae, [(tokenizer, text)], config,
                                                            tiny_decoder=taesd))
    pipe = StableDiffusionInpaintPipeline(
        vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
        scheduler=LCMScheduler.from_config(config), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    picture, mask = picture_and_mask(args.picture, args.mask_side)

    def ours(area: InpaintArea, size: int, tiny: bool):
        request = GenerationRequest(PROMPT, steps=args.steps, guidance_scale=GUIDANCE, width=size, height=size,
                                    seed=SEED, init_image=picture, tiny_decoder=tiny,
                                    inpaint=Inpaint(mask=mask, blur=0, area=area, padding=args.padding))
        return lambda: np.asarray(engine.generate(request).images[0])

    def theirs(size: int, crop: int | None):
        def run():
            out = pipe(prompt=PROMPT, image=picture, mask_image=mask, strength=1.0, num_inference_steps=args.steps,
                       guidance_scale=GUIDANCE, height=size, width=size, padding_mask_crop=crop,
                       generator=torch.Generator("cpu").manual_seed(SEED)).images[0]
            if crop is None:
                out = pipe.image_processor.apply_overlay(mask, picture, out)
            return np.asarray(out)
        return run

    rows = []
    kept = np.asarray(mask) == 0
    for label, area, size, crop in (("whole picture", InpaintArea.WHOLE, args.picture, None),
                                    ("only masked", InpaintArea.MASKED, args.size, args.padding)):
        runners = {"live": ours(area, size, True), "vae": ours(area, size, False), "diffusers": theirs(size, crop)}
        for fn in runners.values():
            fn()  # warm-up
        results: dict[str, list[float]] = {name: [] for name in runners}
        images = {}
        for _ in range(args.rounds):
            for name, fn in runners.items():
                seconds, images[name] = timed(fn, 1)
                results[name].append(seconds)
        ms = {name: 1000 * statistics.median(v) for name, v in results.items()}
        outside = all(np.array_equal(images[n][kept], np.asarray(picture)[kept]) for n in ("live", "vae"))
        rows.append(f"| {label} | {args.picture}² → {size}² | **{ms['live']:.0f}** | {ms['vae']:.0f} | "
                    f"{ms['diffusers']:.0f} | **{ms['live'] / ms['diffusers']:.3f}** | "
                    f"{ms['vae'] / ms['diffusers']:.3f} | {'yes' if outside else '**no**'} |")
        print(rows[-1], flush=True)
    minutes, load_after = (time.perf_counter() - started) / 60, os.getloadavg()
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{cpu_name()}, {torch.get_num_threads()} threads")
    lines = [
        f"### Masked live update — {time.strftime('%Y-%m-%d')}, {where}, {str(half).removeprefix('torch.')}, "
        f"torch {torch.__version__}, diffusers {diffusers.__version__}",
        "",
        f"Load average {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end ({minutes:.1f} min). "
        f"SD1.5 architecture, random weights; a {args.picture}² picture with a {args.mask_side}² mask, strength 1, "
        f"{args.steps} steps, guidance {GUIDANCE:g}, seed {SEED}; median of {args.rounds} warm runs, alternating. "
        f"Ours live: TAESD encoder and decoder, prompt cached; ours VAE: the full VAE; diffusers: "
        f"`StableDiffusionInpaintPipeline` + `LCMScheduler` (full VAE, prompt encoded every call; only masked: "
        f"`padding_mask_crop={args.padding}`), all at {str(half).removeprefix('torch.')}.",
        "",
        "| area | picture → generated | ours live (ms) | ours VAE (ms) | diffusers (ms) | live / diffusers | "
        "VAE / diffusers | outside the mask unchanged |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    text_out = "\n".join(lines) + "\n"
    print(text_out)
    if args.markdown:
        add_to_section(args.markdown, text_out)
    return 0


def add_to_section(path: Path, text: str) -> None:
    """Append ``text`` at the end of this benchmark's section of ``path`` (the section is made if missing)."""
    doc = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    if SECTION not in doc:
        doc = doc.rstrip("\n") + (f"\n\n{SECTION}\n\n`benchmarks/bench_inpaint.py` (`make bench`): one masked "
                                  "live update (fit, encode, steps, decode, paste back, overlay) against diffusers' "
                                  "inpaint pipeline on the same modules.\n")
    start = doc.index(SECTION) + len(SECTION)
    end = doc.find("\n## ", start)
    end = len(doc) if end < 0 else end + 1
    doc = doc[:end].rstrip("\n") + "\n\n" + text + ("\n" + doc[end:] if end < len(doc) else "")
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
