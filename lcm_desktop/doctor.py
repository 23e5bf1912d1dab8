"""`lcm-desktop doctor`: a report a user can paste into an issue.

System facts, package versions, which backends exist here (and why the others do not), and for
the selected model: load time, a 4-step generation timed per phase on each available backend,
and for converted Core ML models the first-load compilation time and PSNR of each component
against PyTorch (macOS only).  Nothing here needs the network.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "diffusers", "transformers", "huggingface_hub", "safetensors", "numpy", "coremltools",
            "PySide6-Essentials", "Pillow", "scikit-learn")


@dataclass
class Backend:
    name: str
    available: bool
    why: str = ""  # what is missing, when not available
    debugging: bool = False  # listed for completeness; never timed (the app does not offer it)


@dataclass
class Report:
    system: dict[str, str] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)
    backends: list[Backend] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    parity: list[dict[str, Any]] = field(default_factory=list)

    def to_text(self) -> str:
        lines = ["LCM Desktop doctor", "", "System"]
        lines += [f"  {k:<10} {v}" for k, v in self.system.items()]
        lines += ["", "Packages"]
        lines += [f"  {k:<20} {v}" for k, v in self.packages.items()]
        lines += ["", "Backends"]
        for b in self.backends:
            note = b.why if not b.available else "debugging only: slow, not timed here" if b.debugging else ""
            lines.append(f"  {'✓' if b.available else '✗'} {b.name:<38} {note}".rstrip())
        if self.model:
            lines += ["", "Model"]
            lines += [f"  {k:<10} {v}" for k, v in self.model.items()]
        if self.runs:
            lines += ["", "Generation (4 steps, seed 0, timed per phase; seconds)"]
            for run in self.runs:
                if "error" in run:
                    lines.append(f"  {run['backend']:<38} {run['error']}")
                    continue
                steps = ", ".join(f"{s:.3f}" for s in run["steps"])
                lines.append(f"  {run['backend']:<38} load {run['load']:.2f}  encode {run['encode']:.3f}  "
                             f"steps [{steps}]  decode {run['decode']:.3f}  total {run['total']:.2f}  "
                             f"({run['size']})")
        if self.parity:
            lines += ["", "Core ML vs PyTorch (PSNR, dB; pass ≥ 35)"]
            for row in self.parity:
                if "error" in row:
                    lines.append(f"  {row['backend']:<38} {row['error']}")
                else:
                    lines.append(f"  {row['backend']:<38} " + "  ".join(
                        f"{k} {v:.1f}{'' if v >= 35 else ' FAIL'}" for k, v in row["psnr"].items()))
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        data = {**self.__dict__, "backends": [b.__dict__ for b in self.backends]}
        return json.dumps(data, indent=2, default=str)


def system_facts() -> dict[str, str]:
    facts = {
        "os": platform.platform(),
        "machine": platform.machine(),
        "chip": _chip(),
        "cores": str(os.cpu_count()),
        "python": sys.version.split()[0],
    }
    try:
        import psutil

        facts["memory"] = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        facts["memory"] = "unknown (psutil missing)"
    return facts


def _chip() -> str:
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=5).stdout.strip() or platform.processor()
        except OSError:
            return platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def backends() -> list[Backend]:
    found = [Backend("PyTorch · CPU", True)]
    try:
        import torch
    except ImportError:
        return [Backend("PyTorch", False, "torch is not installed: run `make venv`")]
    if torch.cuda.is_available():
        found.append(Backend(f"PyTorch · CUDA ({torch.cuda.get_device_name(0)})", True))
    elif torch.version.cuda is None:
        found.append(Backend("PyTorch · CUDA", False, "this torch build has no CUDA (a CPU build)"))
    else:
        found.append(Backend("PyTorch · CUDA", False, "no NVIDIA GPU/driver found"))
    if torch.backends.mps.is_available():
        found.append(Backend("PyTorch · MPS (Apple GPU)", True))
    elif sys.platform != "darwin":
        found.append(Backend("PyTorch · MPS (Apple GPU)", False, "MPS exists only on macOS"))
    else:
        found.append(Backend("PyTorch · MPS (Apple GPU)", False,
                             "MPS not available: needs Apple Silicon, macOS 12.3+ and an arm64 Python"))
    try:
        import coremltools  # noqa: F401

        has_ct = True
    except ImportError:
        has_ct = False
    for units, label in (("CPU_AND_NE", "Neural Engine"), ("CPU_AND_GPU", "GPU"), ("CPU_ONLY", "CPU")):
        name = f"Core ML · {label} ({units})"
        if not has_ct:
            found.append(Backend(name, False, "coremltools is not installed: pip install coremltools"))
        elif sys.platform != "darwin":
            found.append(Backend(name, False, "Core ML runs models only on macOS (conversion works here)"))
        elif units == "CPU_AND_NE" and platform.machine() != "arm64":
            found.append(Backend(name, False, "the Neural Engine needs Apple Silicon"))
        else:
            found.append(Backend(name, True))
    # The converted packages run op by op in numpy (lcm-desktop generate --compute-units REFERENCE): any OS.
    found.append(Backend("Core ML · reference executor (REFERENCE)", has_ct,
                         "" if has_ct else "coremltools is not installed (it reads the packages): pip install coremltools",
                         debugging=True))
    return found


def time_generation(engine_factory, label: str, size: str | None = None) -> dict[str, Any]:
    """Load an engine and time a 4-step generation per phase; errors become a one-line reason."""
    from .core.errors import LcmError
    from .core.request import GenerationRequest

    try:
        start = time.perf_counter()
        engine = engine_factory()
        engine.load()
        load = time.perf_counter() - start
        engine.generate(GenerationRequest("warm-up", steps=1, seed=0))
        result = engine.generate(GenerationRequest("a large yellow circle on a green background, top left", steps=4,
                                                   seed=0))
    except LcmError as exc:
        return {"backend": label, "error": exc.user_message}
    t = result.timings
    req = result.request
    return {"backend": label, "load": load, "encode": t["encode"], "steps": t["steps"], "decode": t["decode"],
            "total": t["total"], "size": size or f"{req.width}x{req.height}"}


def run_doctor(model: Path | None, *, generate: bool = True) -> Report:
    from .core.errors import LcmError

    report = Report(system_facts(), package_versions(), backends())
    if model is None:
        return report
    report.model["path"] = str(model)
    from .core.model_folder import inspect_model_folder, model_hash

    try:
        folder = inspect_model_folder(model)
        report.model.update(family=folder.family, hash=model_hash(folder), pipeline=folder.pipeline_class)
        is_coreml = False
    except LcmError as exc:
        if (Path(model) / "manifest.json").is_file():
            is_coreml = True
            report.model["format"] = "Core ML (converted)"
        else:
            report.model["error"] = exc.user_message
            return report
    if not generate:
        return report
    from .engine.diffusers_quiet import quiet_libraries
    from .engine.engine import Engine

    quiet_libraries()
    for b in report.backends:
        if not b.available or b.debugging:
            continue
        if b.name.startswith("PyTorch") and not is_coreml:
            device = "cpu" if "CPU" in b.name else ("cuda" if "CUDA" in b.name else "mps")
            report.runs.append(time_generation(lambda d=device: Engine(model, device=d), b.name))
        elif b.name.startswith("Core ML") and is_coreml:
            units = b.name.split("(")[-1].rstrip(")")
            report.runs.append(time_generation(lambda u=units: Engine(model, backend="coreml", compute_units=u),
                                               b.name))
            report.parity.append(coreml_parity(model, units, b.name))
    if is_coreml and not any(b.available and not b.debugging for b in report.backends if b.name.startswith("Core ML")):
        report.parity.append({"backend": "Core ML", "error": "PSNR needs the Core ML runtime (macOS); the converter's "
                              "reference-executor PSNR is in the model's manifest.json"})
    return report


def coreml_parity(model: Path, units: str, label: str) -> dict[str, Any]:
    """PSNR of each converted component against the PyTorch model it was converted from."""
    from .core.errors import LcmError
    from .core.manifest import load_manifest
    from .core.paths import AppPaths
    from .engine.coreml_backend import load_coreml_components
    from .engine.parity import compare_components
    from .engine.torch_backend import load_torch_components

    try:
        manifest = load_manifest(model)
        source = Path(manifest.source.path)
        if not source.is_dir():
            return {"backend": label, "error": f"the source model {source} is not on this machine"}
        reference = load_torch_components(source, device="cpu", lora=manifest.source.lcm_lora)
        candidate = load_coreml_components(model, compute_units=units, cache_dir=AppPaths.default().cache / "coreml")
        return {"backend": label, "psnr": compare_components(reference, candidate)}
    except LcmError as exc:
        return {"backend": label, "error": exc.user_message}
