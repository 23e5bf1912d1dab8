"""Full size (``make test-slow``): the real SD1.5 LCM UNet architecture, random weights, 512×512.

Converts in a child process (as the app does), measuring wall time and peak RSS there; then
palettizes the fp16 package to 6 bits in another child; then runs both packages once through the
reference executor (``lcm_desktop.mlprogram``), each in its own child, against the PyTorch
output of the same inputs.  Prints one ``CORE ML CONVERSION`` / ``REFERENCE EXECUTOR`` line per
phase with the figures recorded in docs/PERFORMANCE.md.  Needs ~10 GB of RAM and ~6 GB of disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lcm_desktop.core.manifest import load_manifest
from lcm_desktop.core.paths import resource_path

pytestmark = pytest.mark.slow

_CHILD = """
import resource, sys, time
started = time.perf_counter()
{body}
usage = resource.getrusage(resource.RUSAGE_SELF)
print("MEASURED", time.perf_counter() - started, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime)
"""


def _measure(body: str, timeout: int) -> tuple[float, int, float, str]:
    """Run ``body`` in a fresh interpreter; (wall seconds, peak RSS bytes, CPU seconds, stdout)."""
    proc = subprocess.run([sys.executable, "-c", _CHILD.format(body=body)], capture_output=True, text=True,
                          timeout=timeout, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    seconds, rss, cpu = proc.stdout.strip().splitlines()[-1].split()[1:]
    return float(seconds), int(rss), float(cpu), proc.stdout


@pytest.fixture(scope="module")
def sd15_lcm_unet_source(tmp_path_factory) -> Path:
    """A diffusers folder with a random-weight SD1.5 LCM UNet (time_cond_proj_dim 256), saved as fp32 safetensors."""
    import torch
    from diffusers import UNet2DConditionModel

    folder = tmp_path_factory.mktemp("sd15") / "sd15-lcm-random"
    configs = resource_path("configs")
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(json.loads((configs / "sd15_unet_lcm.json").read_text()))
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    del unet
    (folder / "vae").mkdir()
    (folder / "vae" / "config.json").write_text((configs / "sd15_vae.json").read_text())
    (folder / "scheduler").mkdir()
    (folder / "scheduler" / "scheduler_config.json").write_text((configs / "lcm_scheduler.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "LatentConsistencyModelPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"], "scheduler": ["diffusers", "LCMScheduler"],
    }))
    return folder


@pytest.fixture(scope="module")
def sd15_packages(sd15_lcm_unet_source, tmp_path_factory) -> tuple[Path, Path]:
    """The fp16 conversion (``--no-verify``: the executor is measured on its own below) and its 6-bit palettization."""
    out = tmp_path_factory.mktemp("sd15-coreml") / "sd15-coreml"
    argv = [str(sd15_lcm_unet_source), "--out", str(out), "--components", "unet", "--size", "512x512", "--no-verify"]
    seconds, rss, cpu, stdout = _measure(
        f"from convert.__main__ import main\nrc = main({argv!r})\nassert rc == 0, rc", timeout=1800)
    m = load_manifest(out)
    unet = m.require("Unet")
    assert {s.name: s.shape for s in unet.inputs} == {
        "sample": (1, 4, 64, 64), "timestep": (1,), "encoder_hidden_states": (1, 768, 1, 77), "timestep_cond": (1, 256),
    }
    assert unet.outputs[0].shape == (1, 4, 64, 64)
    [parity] = unet.parity
    assert parity.passed and parity.value < 1e-4
    fp16 = unet.size_bytes
    assert 1.6e9 < fp16 < 1.8e9  # 859.5 M parameters × 2 bytes
    print(f"\nCORE ML CONVERSION fp16: {seconds:.0f} s wall, {cpu:.0f} s CPU, peak RSS {rss / 2**30:.2f} GiB, "
          f"Unet {fp16 / 1e9:.2f} GB, "
          f"traced-vs-eager relative error {parity.value:.1e}\n{stdout}")

    palettized = out.parent / "Unet-6bit.mlpackage"
    p_seconds, p_rss, p_cpu, _ = _measure(
        "from pathlib import Path\nfrom convert.compress import palettize\n"
        f"palettize(Path({str(out / 'Unet.mlpackage')!r}), 6, Path({str(palettized)!r}))", timeout=1800)
    from convert.export import read_package_io

    assert read_package_io(palettized) == (list(unet.inputs), list(unet.outputs))
    six = sum(p.stat().st_size for p in palettized.rglob("*") if p.is_file())
    assert six < 0.45 * fp16  # 6/16 of the weights plus the lookup tables and small fp16 tensors
    print(f"CORE ML CONVERSION 6-bit: {p_seconds:.0f} s wall, {p_cpu:.0f} s CPU, peak RSS {p_rss / 2**30:.2f} GiB, "
          f"Unet {six / 1e9:.2f} GB")
    return out / "Unet.mlpackage", palettized


def test_sd15_lcm_unet_converts_at_512_and_palettizes_to_6_bits(sd15_packages):
    fp16, six = sd15_packages
    assert fp16.is_dir() and six.is_dir()


_REFERENCE = """
import numpy as np, torch
from pathlib import Path
from convert.components import build_wrappers
from convert.options import ConvertOptions
torch.manual_seed(0)
wrapper = build_wrappers(ConvertOptions(source=Path({source!r}), out=Path({out!r}), components=("unet",),
                                        size=(512, 512)))["Unet"]
inputs = wrapper.example_inputs(torch.Generator().manual_seed(0))
with torch.no_grad():
    ref = wrapper(*inputs)
np.savez({npz!r}, noise_pred=ref.numpy(), **{{n: x.numpy() for n, x in zip(wrapper.input_names, inputs)}})
"""

_EXECUTE = """
import time, numpy as np
from lcm_desktop.mlprogram import Executor, load_program
feeds = dict(np.load({npz!r}))
del feeds["noise_pred"]
t = time.perf_counter()
executor = Executor(load_program({package!r}))
loaded = time.perf_counter() - t
t = time.perf_counter()
out = executor.predict(feeds)["noise_pred"]
print("PHASES", loaded, time.perf_counter() - t)
np.save({result!r}, out)
"""


def test_sd15_packages_run_on_the_reference_executor(sd15_lcm_unet_source, sd15_packages, tmp_path):
    """Both packages once through the executor, each in its own child: PSNR vs PyTorch, wall time, peak RSS."""
    import numpy as np

    from convert.validate import min_psnr_db, psnr

    npz = str(tmp_path / "reference.npz")
    r_seconds, r_rss, _, _ = _measure(_REFERENCE.format(source=str(sd15_lcm_unet_source), out=str(tmp_path / "x"),
                                                        npz=npz), timeout=1800)
    reference = np.load(npz)["noise_pred"]
    print(f"\nPYTORCH REFERENCE fp32 (wrapper, split_einsum): {r_seconds:.0f} s wall incl. loading, "
          f"peak RSS {r_rss / 2**30:.2f} GiB")
    for label, package, threshold in (("fp16", sd15_packages[0], min_psnr_db(None)),
                                      ("6-bit", sd15_packages[1], min_psnr_db(6))):
        result = str(tmp_path / f"{label}.npy")
        seconds, rss, cpu, stdout = _measure(_EXECUTE.format(npz=npz, package=str(package), result=result),
                                             timeout=3600)
        loaded, ran = (float(v) for v in stdout.split("PHASES")[1].split()[:2])
        value = psnr(np.load(result), reference)
        print(f"REFERENCE EXECUTOR {label}: PSNR {value:.1f} dB vs PyTorch (needs ≥ {threshold:g}), "
              f"{seconds:.0f} s wall (load {loaded:.0f} s, one UNet call {ran:.0f} s), {cpu:.0f} s CPU, "
              f"peak RSS {rss / 2**30:.2f} GiB")
        assert value >= threshold
