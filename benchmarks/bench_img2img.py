"""Image-to-image "live update": our engine vs diffusers' LatentConsistencyModelImg2ImgPipeline, in one process.

One live update = fit the starting image, encode it, ``steps`` UNet calls, decode: what the app runs each
time a live image-to-image parameter changes.  Ours runs its fast path (bf16 modules, TAESD encoder and
decoder via ``tiny_decoder=True``, the prompt embedding cached as in live use); diffusers runs at its
defaults (fp32, full VAE both ways, the prompt encoded every call).  Same random-weight SD1.5 modules
(``_common.build_modules``), size, steps, strength, guidance and seed; runs alternate after a warm-up, so
the ratios compare like with like on a shared machine.  Then the same on the built-in model (64×64).

    python benchmarks/bench_img2img.py [--rounds 2] [--sizes 256 512] [--steps 2 4] [--strength 0.5]
                                       [--demo-rounds 20] [--markdown docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import PROMPT, build_modules, cpu_name, lcm_scheduler_config, psnr  # noqa: E402
from lcm_desktop.core.paths import resource_path  # noqa: E402
from lcm_desktop.core.request import GenerationRequest  # noqa: E402
from lcm_desktop.engine.engine import Engine  # noqa: E402
from lcm_desktop.engine.loaders import TorchLoader  # noqa: E402
from lcm_desktop.engine.torch_backend import components_from_modules  # noqa: E402

SECTION = "## Image-to-image (live update)"
TARGET = 0.4  # issue 13: a live update in at most 0.4× diffusers' time for the same steps and size
GUIDANCE, SEED = 8.5, 1
PHASES = ("prompt", "image encode", "UNet", "decode")


def start_image(size: int):
    """A deterministic starting image: a colour gradient with a disc and a bar (what a sketch looks like)."""
    from PIL import Image, ImageDraw

    ramp = np.linspace(0, 255, size, dtype=np.float32)
    rgb = np.stack([np.broadcast_to(ramp, (size, size)), np.broadcast_to(ramp[:, None], (size, size)),
                    np.full((size, size), 120.0)], axis=-1)
    image = Image.fromarray(rgb.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((size // 5, size // 4, size * 3 // 5, size * 13 // 20), fill=(230, 40, 30))
    draw.rectangle((size * 2 // 3, size // 8, size * 7 // 8, size * 7 // 8), fill=(20, 160, 60))
    return image


class PhaseClock:
    """Adds up the CPU seconds (this process, all threads) spent in chosen module methods (an instance attribute
    shadows the class's method).  CPU time, not wall time: other people's jobs on a shared machine stretch the
    wall clock of every phase, much less the work each phase does."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    def watch(self, phase: str, module: torch.nn.Module, method: str) -> None:
        original = getattr(module, method)

        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[phase] += time.process_time() - start

        object.__setattr__(module, method, timed)

    def watch_pipeline(self, unet: torch.nn.Module, text: torch.nn.Module, *autoencoders: torch.nn.Module) -> None:
        self.watch("UNet", unet, "forward")
        self.watch("prompt", text, "forward")
        for vae in autoencoders:
            self.watch("image encode", vae, "encode")
            self.watch("decode", vae, "decode")

    def take(self) -> dict[str, float]:
        taken, self.seconds = dict(self.seconds), defaultdict(float)
        return taken


@dataclass
class Runs:
    """The timed runs of one configuration: wall and CPU seconds, phase CPU seconds and the last image."""

    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    phases: list[dict[str, float]] = field(default_factory=list)
    image: np.ndarray | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)

    def phase_ms(self, phase: str) -> float:
        return 1000 * statistics.mean(p.get(phase, 0.0) for p in self.phases)


def alternate(runners: dict[str, Callable[[], np.ndarray]], rounds: int, clock: PhaseClock | None,
              warm_up: bool = True) -> dict[str, Runs]:
    """One warm-up each, then ``rounds`` rounds of every runner in turn."""
    if warm_up:
        for fn in runners.values():
            fn()
    runs = {name: Runs() for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            if clock is not None:
                clock.take()
            start, cpu = time.perf_counter(), time.process_time()
            runs[name].image = fn()
            runs[name].seconds.append(time.perf_counter() - start)
            runs[name].cpu.append(time.process_time() - cpu)
            if clock is not None:
                runs[name].phases.append(clock.take())
    return runs


def ours_runner(engine: Engine, image, size: int, steps: int, strength: float, tiny: bool, guidance: float = GUIDANCE):
    request = GenerationRequest(PROMPT, steps=steps, guidance_scale=guidance, width=size, height=size, seed=SEED,
                                init_image=image, strength=strength, tiny_decoder=tiny)
    return lambda: np.asarray(engine.generate(request).images[0])  # the prompt cache stays warm, as in live use


def diffusers_runner(pipe, image, steps: int, strength: float, guidance: float = GUIDANCE):
    def run():
        out = pipe(prompt=PROMPT, image=image, strength=strength, num_inference_steps=steps, guidance_scale=guidance,
                   generator=[torch.Generator("cpu").manual_seed(SEED)], output_type="np").images[0]
        return (out * 255).round().astype(np.uint8)

    return run


def sd15_section(args) -> tuple[list[str], list[str]]:
    """The SD1.5-architecture tables (times, phases) and the fidelity notes."""
    from diffusers import LatentConsistencyModelImg2ImgPipeline, LCMScheduler

    t0 = time.perf_counter()
    unet, vae, taesd, text, tokenizer = build_modules(torch.float32)
    config = lcm_scheduler_config()
    bf16 = [copy.deepcopy(m).to(torch.bfloat16) for m in (unet, vae, taesd, text)]
    print(f"built random-weight SD1.5 modules (fp32 + bf16 copies) in {time.perf_counter() - t0:.1f}s", flush=True)

    clock = PhaseClock()
    clock.watch_pipeline(unet, text, vae, taesd)
    clock.watch_pipeline(bf16[0], bf16[3], bf16[1], bf16[2])
    pipe = LatentConsistencyModelImg2ImgPipeline(
        vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=LCMScheduler.from_config(config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    fast = Engine.from_components(components_from_modules("sd15-random-bf16", bf16[0], bf16[1], [(tokenizer, bf16[3])],
                                                          config, tiny_decoder=bf16[2]))
    fp32 = Engine.from_components(components_from_modules("sd15-random", unet, vae, [(tokenizer, text)], config,
                                                          tiny_decoder=taesd))
    rows, phase_rows, notes = [], [], []
    for size in args.sizes:
        image = start_image(size)
        for i, steps in enumerate(args.steps):
            runners = {
                "ours": ours_runner(fast, image, size, steps, args.strength, tiny=True),
                "diffusers": diffusers_runner(pipe, image, steps, args.strength),
                "ours_vae": ours_runner(fast, image, size, steps, args.strength, tiny=False),
            }
            runs = alternate(runners, args.rounds, clock, warm_up=i == 0)  # shapes depend on the size only
            ours, ref, full = runs["ours"].median, runs["diffusers"].median, runs["ours_vae"].median
            cpu = {name: r.median_cpu for name, r in runs.items()}
            cpu_ratio = cpu["ours"] / cpu["diffusers"]
            rows.append(f"| {size}² | {steps} | **{1000 * ours:.0f}** | {1000 * ref:.0f} | **{ours / ref:.3f}** | "
                        f"**{cpu_ratio:.3f}** ({1 / cpu_ratio:.1f}× less) | "
                        f"{'yes' if max(ours / ref, cpu_ratio) <= TARGET else '**no**'} | "
                        f"{1000 * full:.0f} | {full / ref:.3f} / {cpu['ours_vae'] / cpu['diffusers']:.3f} |")
            print(rows[-1], flush=True)
            labels = {"ours": "ours bf16 + TAESD", "diffusers": "diffusers fp32 + VAE", "ours_vae": "ours bf16 + VAE"}
            phase_rows += [phase_row(f"{size}²", steps, labels[name], r) for name, r in runs.items()]
            print("\n".join(phase_rows[-3:]), flush=True)
            if steps == max(args.steps) and size in args.fidelity_sizes:
                notes += fidelity(fp32, runs, image, size, steps, args.strength)
    return rows, phase_rows, notes


def phase_row(size: str, steps: int, label: str, runs: Runs, digits: int = 0) -> str:
    parts = [runs.phase_ms(p) for p in PHASES]
    rest = 1000 * statistics.mean(runs.cpu) - sum(parts)
    ms = [f"{p:.{digits}f}" for p in (*parts, parts[2] / steps, rest)]
    return f"| {size} | {steps} | {label} | {ms[0]} | {ms[1]} | {ms[2]} ({ms[4]}/step) | {ms[3]} | {ms[5]} |"


def compare(ours: np.ndarray, reference: np.ndarray) -> str:
    diff = int(np.abs(ours.astype(np.int16) - reference.astype(np.int16)).max())
    return f"PSNR {psnr(ours, reference):.1f} dB, max pixel difference {diff}"


def fidelity(fp32: Engine, runs: dict[str, Runs], image, size: int, steps: int, strength: float) -> list[str]:
    """Our fp32 path against diffusers' pixels, and our bf16 paths against fp32 (one untimed run each)."""
    ours_full = ours_runner(fp32, image, size, steps, strength, tiny=False)()
    ours_tiny = ours_runner(fp32, image, size, steps, strength, tiny=True)()
    return [
        f"- {size}², {steps} steps: ours fp32 + VAE vs diffusers: {compare(ours_full, runs['diffusers'].image)}; "
        f"bf16 + TAESD vs fp32 + TAESD: **{psnr(runs['ours'].image, ours_tiny):.1f} dB**; "
        f"bf16 + VAE vs fp32 + VAE: {psnr(runs['ours_vae'].image, ours_full):.1f} dB."
    ]


def demo_section(args) -> tuple[list[str], list[str]]:
    """The built-in model at its native 64×64: ours as the app runs it on a CPU (fp32, full VAE) vs diffusers."""
    from diffusers import LatentConsistencyModelImg2ImgPipeline

    folder = resource_path("models", "lcm-demo")
    ours = Engine(TorchLoader(folder))
    ours_bf16 = Engine(TorchLoader(folder, dtype="bfloat16"))
    guidance = ours.defaults.guidance_scale
    try:
        pipe = LatentConsistencyModelImg2ImgPipeline.from_pretrained(folder, safety_checker=None)
        pipe.set_progress_bar_config(disable=True)
    except Exception as exc:  # a benchmark: report why and time ours alone
        print(f"diffusers' img2img pipeline did not load the built-in model: {exc}", flush=True)
        pipe = None
    clock = PhaseClock()
    for engine in (ours, ours_bf16):
        comps = engine.components
        clock.watch_pipeline(comps.denoiser.unet, comps.text_encoder.pairs[0][1], comps.decoder.vae)
    if pipe is not None:
        clock.watch_pipeline(pipe.unet, pipe.text_encoder, pipe.vae)
    image = start_image(64)
    lines, phase_rows = [], []
    labels = {"ours": "ours fp32 + VAE", "ours_bf16": "ours bf16 + VAE", "diffusers": "diffusers fp32 + VAE"}
    for steps in args.steps:
        runners = {"ours": ours_runner(ours, image, 64, steps, args.strength, tiny=False, guidance=guidance),
                   "ours_bf16": ours_runner(ours_bf16, image, 64, steps, args.strength, tiny=False, guidance=guidance)}
        if pipe is not None:
            runners["diffusers"] = diffusers_runner(pipe, image, steps, args.strength, guidance=guidance)
        runs = alternate(runners, args.demo_rounds, clock)
        phase_rows += [phase_row("built-in 64²", steps, labels[name], r, digits=1) for name, r in runs.items()]
        ours_ms, bf16_ms = 1000 * runs["ours"].median, 1000 * runs["ours_bf16"].median
        if pipe is None:
            lines.append(f"| built-in (64²) | {steps} | **{ours_ms:.1f}** | {bf16_ms:.1f} | — | — | — |")
        else:
            ref = 1000 * runs["diffusers"].median
            cpu_ratio = runs["ours"].median_cpu / runs["diffusers"].median_cpu
            lines.append(f"| built-in (64²) | {steps} | **{ours_ms:.1f}** | {bf16_ms:.1f} | {ref:.1f} | "
                         f"**{ours_ms / ref:.3f}** / {cpu_ratio:.3f} | "
                         f"{compare(runs['ours'].image, runs['diffusers'].image)} |")
        print(lines[-1], flush=True)
    return lines, phase_rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--demo-rounds", type=int, default=20)
    parser.add_argument("--fidelity-sizes", type=int, nargs="*", default=[256],
                        help="sizes at which untimed fp32 runs give the PSNR notes (none: skip them)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); 1 keeps CPU times honest on a crowded machine, where "
                        "idle OpenMP threads spin while their peer waits for a core")
    parser.add_argument("--markdown", type=Path, default=None, help="add the tables to this file's section")
    args = parser.parse_args()

    import diffusers

    diffusers.utils.logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    started, load_before = time.perf_counter(), os.getloadavg()
    rows, phase_rows, notes = sd15_section(args)
    demo_rows, demo_phases = demo_section(args)
    minutes, load_after = (time.perf_counter() - started) / 60, os.getloadavg()
    threads = torch.get_num_threads()
    lines = [
        f"### Image-to-image live update — {time.strftime('%Y-%m-%d')}, {cpu_name()}, {threads} "
        f"thread{'s' if threads > 1 else ''}, torch {torch.__version__}, diffusers {diffusers.__version__}",
        "",
        f"Load average {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end ({minutes:.0f} min). "
        f"SD1.5 architecture, random weights; strength {args.strength:g}, guidance {GUIDANCE:g}, seed {SEED}; "
        f"median of {args.rounds} warm run{'s' if args.rounds > 1 else ''} per configuration, "
        "alternating ours / diffusers / ours + full VAE. "
        "Ours: bf16, TAESD encoder and decoder (`tiny_decoder=True`), prompt embedding cached (live use); "
        "diffusers: `LatentConsistencyModelImg2ImgPipeline` defaults (fp32, full VAE, prompt encoded every call).",
        "",
        "| size | steps | ours bf16 + TAESD (ms) | diffusers fp32 + VAE (ms) | ours / diffusers, wall | "
        f"ours / diffusers, CPU time | ≤ {TARGET:g}× (both) | ours bf16 + full VAE (ms) | "
        "bf16 full VAE / diffusers, wall / CPU |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        *notes,
        "",
        f"Built-in model (`resources/models/lcm-demo`, 64×64, guidance 6 (its default), strength {args.strength:g}), "
        f"median of {args.demo_rounds} warm runs, alternating; ours as the app runs it on a CPU (fp32, full VAE — the "
        "model has no tiny autoencoder), prompt cached:",
        "",
        "| model | steps | ours fp32 (ms) | ours bf16 (ms) | diffusers fp32 (ms) | ours fp32 / diffusers, wall / CPU | "
        "ours fp32 vs diffusers |",
        "|---|---|---|---|---|---|---|",
        *demo_rows,
        "",
        "Where the time goes (mean CPU ms per update, all threads; rest = fitting the image, noise, scheduler, "
        "tensors → pixels):",
        "",
        "| size | steps | configuration | prompt | image encode | UNet | decode | rest |",
        "|---|---|---|---|---|---|---|---|",
        *phase_rows,
        *demo_phases,
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
        doc = doc.rstrip("\n") + f"\n\n{SECTION}\n\n`benchmarks/bench_img2img.py` (`make bench`).\n"
    start = doc.index(SECTION) + len(SECTION)
    end = doc.find("\n## ", start)
    end = len(doc) if end < 0 else end + 1
    doc = doc[:end].rstrip("\n") + "\n\n" + text + ("\n" + doc[end:] if end < len(doc) else "")
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
