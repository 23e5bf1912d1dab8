"""A sampler preset on a converted model: the Core ML backend runs it through the shared loop (reference
executor), and the manifest records which preset the model runs."""

from __future__ import annotations

import numpy as np
from tiny_models import relative_error

from lcm_desktop.core.request import GenerationRequest


def test_a_preset_runs_on_core_ml_through_the_shared_loop_and_the_manifest_records_it(coreml, torch_lcm, coreml_lcm,
                                                                                     tmp_path):
    import json
    import shutil

    from convert.validate import psnr
    from lcm_desktop.core.model_info import describe_model
    from lcm_desktop.engine.engine import Engine

    comps, _ = coreml
    request = GenerationRequest("a red circle on a blue background", steps=2, seed=7, sampler="tcd", eta=0.6)
    runs = []
    for components, req in ((comps, request), (torch_lcm, request),
                            (torch_lcm, GenerationRequest(request.prompt, steps=2, seed=7))):
        latents = []
        result = Engine(loader=lambda c=components: c).generate(
            req, on_step=lambda p, out=latents: out.append(p.denoised))
        runs.append((result, latents[-1]))
    (ours, ours_latents), (ref, tcd_latents), (_, lcm_latents) = runs
    assert (ours.request.sampler, ours.request.eta) == ("tcd", 0.6)
    a, b = (np.asarray(r.images[0], dtype=np.float64) for r in (ours, ref))
    assert psnr(a, b) >= 40
    # TCD's latents, not LCM's: Core ML's fp16 error is far below the samplers' difference (~1.6e-2 here)
    assert relative_error(ours_latents, tcd_latents) < relative_error(tcd_latents, lcm_latents) / 3
    folder = shutil.copytree(coreml_lcm, tmp_path / "tcd-coreml")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sampler"] == describe_model(folder).preset.name == "lcm"  # the converter read the source's
    (folder / "manifest.json").write_text(json.dumps({**manifest, "sampler": "hyper-sd"}))
    info = describe_model(folder)  # (its lcm_desktop.json, written at conversion, keeps the source's 4 steps)
    assert info.preset.name == "hyper-sd" and info.presets[0].name == "hyper-sd"
