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

from .core.parity import MIN_PSNR_DB

PACKAGES = ("torch", "diffusers", "transformers", "huggingface_hub", "safetensors", "numpy", "coremltools",
            "PySide6-Essentials", "Pillow", "scikit-learn")


@dataclass
class Backend:
    name: str
    available: bool
    why: str = ""  # what is missing, when not available
    key: str = ""  # the BackendChoice key (engine.backends)
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
            lines += ["", f"Core ML vs PyTorch (PSNR, dB; pass ≥ {MIN_PSNR_DB:g})"]
            for row in self.parity:
                if "error" in row:
                    lines.append(f"  {row['backend']:<38} {row['error']}")
                else:
                    lines.append(f"  {row['backend']:<38} " + "  ".join(
                        f"{k} {v:.1f}{'' if v >= MIN_PSNR_DB else ' FAIL'}" for k, v in row["psnr"].items()))
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
    """Every backend choice (engine.backends), with why the unavailable ones cannot run here."""
    from .engine.backends import probe_backends

    return [Backend(s.choice.label + (f" ({s.detail})" if s.detail else ""), s.available, s.why, s.choice.key,
                    s.choice.debugging) for s in probe_backends()]


def time_generation(engine_factory, label: str, size: str | None = None, prompt: str | None = None) -> dict[str, Any]:
    """Load an engine and time a 4-step generation per phase; errors become a one-line reason."""
    from .core.errors import LcmError
    from .core.request import GenerationRequest

    try:
        start = time.perf_counter()
        engine = engine_factory()
        engine.load()
        load = time.perf_counter() - start
        engine.generate(GenerationRequest("warm-up", steps=1, seed=0))
        result = engine.generate(GenerationRequest(prompt or "a red circle", steps=4, seed=0))
    except LcmError as exc:
        return {"backend": label, "error": exc.user_message}
    t = result.timings
    req = result.request
    return {"backend": label, "load": load, "encode": t.encode, "steps": list(t.steps), "decode": t.decode,
            "total": t.total, "size": size or f"{req.width}x{req.height}"}


FORMATS = {"diffusers": "diffusers", "coreml": "Core ML (converted)", "apple-coreml": "Core ML (Apple layout)"}


def run_doctor(model: Path | None, *, generate: bool = True) -> Report:
    from .core.errors import LcmError
    from .core.model_folder import inspect_model_folder, model_hash
    from .core.model_info import ModelKind, describe_model

    report = Report(system_facts(), package_versions(), backends())
    if model is None:
        return report
    report.model["path"] = str(model)
    try:
        info = describe_model(model)
        report.model.update(format=FORMATS[info.kind], family=info.family)
        if info.kind is ModelKind.DIFFUSERS:
            folder = inspect_model_folder(model)
            report.model.update(hash=model_hash(folder), pipeline=folder.pipeline_class)
    except LcmError as exc:
        report.model["error"] = exc.user_message
        return report
    if not generate:
        return report
    from .engine.backends import choice
    from .engine.diffusers_quiet import quiet_libraries
    from .engine.engine import Engine

    quiet_libraries()
    runnable = [b for b in report.backends
                if b.available and not b.debugging and choice(b.key).kind.runs(info.kind)]
    for b in runnable:
        backend = choice(b.key)
        report.runs.append(time_generation(lambda c=backend: Engine(c.loader(model)), b.name,
                                           prompt=info.defaults.example_prompt))
        if info.kind.is_coreml:
            report.parity.append(coreml_parity(model, backend.compute_units or "ALL", b.name))
    if info.kind.is_coreml and not runnable:
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
