"""Full size (``make test-slow``): the real SD1.5 LCM UNet architecture, random weights, 512×512.

Converts in a child process (as the app does), measuring wall time and peak RSS there; then
palettizes the fp16 package to 6 bits in another child.  Prints one ``CORE ML CONVERSION``
line per phase with the figures recorded in docs/PERFORMANCE.md.  Needs ~8 GB of RAM and
~6 GB of disk.
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


def test_sd15_lcm_unet_converts_at_512_and_palettizes_to_6_bits(sd15_lcm_unet_source, tmp_path):
    out = tmp_path / "sd15-coreml"
    argv = [str(sd15_lcm_unet_source), "--out", str(out), "--components", "unet", "--size", "512x512"]
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

    palettized = tmp_path / "Unet-6bit.mlpackage"
    p_seconds, p_rss, p_cpu, _ = _measure(
        "from pathlib import Path\nfrom convert.compress import palettize\n"
        f"palettize(Path({str(out / 'Unet.mlpackage')!r}), 6, Path({str(palettized)!r}))", timeout=1800)
    from convert.export import read_package_io

    assert read_package_io(palettized) == (list(unet.inputs), list(unet.outputs))
    six = sum(p.stat().st_size for p in palettized.rglob("*") if p.is_file())
    assert six < 0.45 * fp16  # 6/16 of the weights plus the lookup tables and small fp16 tensors
    print(f"CORE ML CONVERSION 6-bit: {p_seconds:.0f} s wall, {p_cpu:.0f} s CPU, peak RSS {p_rss / 2**30:.2f} GiB, "
          f"Unet {six / 1e9:.2f} GB")
