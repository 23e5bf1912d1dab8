"""The Core ML backend's logic, off a Mac: the converted packages run on the reference executor.

``compute_units="REFERENCE"`` runs the very ``.mlpackage``s the converter wrote, op by op, in fp16
(``lcm_desktop.mlprogram``), so the backend's plumbing — manifest, input checks, layouts,
scaling, batching, tokenizer — is tested end to end against the PyTorch backend on real
packages.  A substitute runtime (the captured wrappers in PyTorch) remains only where a test
needs what the executor cannot give: compilation into the cache, and a predictor that breaks
the manifest.  Real Core ML runs are marked ``macos``.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import converted, relative_error, wrappers_for

from lcm_desktop.core.errors import BackendUnavailableError, InvalidRequestError, ModelFormatError
from lcm_desktop.core.request import GenerationRequest
from lcm_desktop.engine.components import Decoder, Denoiser, ImageEncoder, TextEncoder
from lcm_desktop.engine.coreml_backend import load_coreml_components
from lcm_desktop.engine.coreml_runtime import CoreMLToolsRuntime


class TorchPredictor:
    """``MLModel.predict`` stand-in: named float32 arrays in → the wrapper in fp16 → named float32 arrays out."""

    def __init__(self, wrapper: torch.nn.Module):
        self.module = copy.deepcopy(wrapper).half().eval()
        self.input_names, self.output_names = wrapper.input_names, wrapper.output_names

    def predict(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in data.values())
        with torch.no_grad():
            out = self.module(*(torch.from_numpy(data[n]).half() for n in self.input_names))
        out = out if isinstance(out, tuple) else (out,)
        return {n: y.float().numpy() for n, y in zip(self.output_names, out, strict=True)}


class SubstituteRuntime:
    """Compiles by writing a marker folder (counted) and loads a TorchPredictor for the compiled model's name."""

    def __init__(self, wrappers: dict[str, torch.nn.Module]):
        self.wrappers = wrappers
        self.compiled: list[str] = []
        self.loaded: list[tuple[str, str]] = []

    def compile(self, package: Path, destination: Path) -> None:
        assert package.suffix == ".mlpackage" and (package / "Manifest.json").is_file()
        destination.mkdir()
        (destination / "source").write_text(str(package))
        self.compiled.append(package.stem)

    def load(self, compiled: Path, compute_units: str):
        assert compiled.suffix == ".mlmodelc" and (compiled / "source").is_file()
        self.loaded.append((compiled.stem, compute_units))
        return TorchPredictor(self.wrappers[compiled.stem])


@pytest.fixture(scope="module")
def lcm_wrappers(coreml_lcm):
    return wrappers_for(coreml_lcm)


# fp16 compute against fp32: unit roundoff 2^-11 ≈ 4.9e-4 accumulating over a few dozen ops gives
# ~1e-3 relative here; 1e-2 leaves room for that and is still far below any plumbing mistake (≥ 0.1).
FP16_REL = 1e-2


def test_components_follow_the_engine_protocols(coreml):
    from lcm_desktop.mlprogram import Executor

    comps, cache = coreml
    assert isinstance(comps.text_encoder, TextEncoder) and isinstance(comps.denoiser, Denoiser)
    assert isinstance(comps.decoder, Decoder) and isinstance(comps.image_encoder, ImageEncoder)
    assert comps.backend == "coreml:REFERENCE" and comps.family == "sd"
    info = comps.denoiser.info
    assert (info.in_channels, info.time_cond_proj_dim, info.addition_time_embed, info.fixed_shape) == (
        4,
        32,
        False,
        (1, 4, 8, 8),
    )
    assert comps.native_size == (64, 64) and comps.scheduler_config["_class_name"] == "LCMScheduler"
    assert isinstance(comps.tiny_decoder, Decoder)
    models = [comps.denoiser.model, comps.decoder.model, comps.image_encoder.model, comps.tiny_decoder.model,
              comps.text_encoder.pairs[0][1]]
    assert all(isinstance(m.predictor, Executor) for m in models)
    assert sorted(m.predictor.name for m in models) == sorted(f"{m.spec.name}.mlpackage" for m in models)
    assert not cache.exists(), "the reference executor compiles nothing and caches nothing"


def test_text_encoder_matches_torch(coreml, torch_lcm):
    comps, _ = coreml
    ours = comps.text_encoder.encode("a red cat on the moon")
    ref = torch_lcm.text_encoder.encode("a red cat on the moon")
    assert ours.hidden_states.shape == ref.hidden_states.shape == (1, 77, 32) and ours.pooled is None
    assert relative_error(ours.hidden_states, ref.hidden_states) < FP16_REL
    other = comps.text_encoder.encode("a blue dog")
    assert relative_error(other.hidden_states, ref.hidden_states) > 10 * FP16_REL  # the prompt really matters


def test_denoiser_matches_torch_and_splits_larger_batches(coreml, torch_lcm):
    comps, _ = coreml
    g = torch.Generator().manual_seed(3)
    sample = torch.randn(2, 4, 8, 8, generator=g)
    hidden = torch.randn(2, 77, 32, generator=g)
    cond = torch.randn(2, 32, generator=g)
    t = torch.tensor(759)
    ref = torch_lcm.denoiser(sample, t, hidden, timestep_cond=cond)
    before = comps.denoiser.calls
    ours = comps.denoiser(sample, t, hidden, timestep_cond=cond)  # B=2 on a B=1 UNet: two calls
    assert ours.shape == (2, 4, 8, 8) and ours.dtype == torch.float32
    assert comps.denoiser.calls - before == 2
    assert relative_error(ours, ref) < FP16_REL
    assert relative_error(ours[1], ours[0]) > 0.1  # rows were not mixed up or repeated


def test_decoder_and_image_encoder_match_torch(coreml, torch_lcm):
    comps, _ = coreml
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    ours, ref = comps.decoder.decode(latents), torch_lcm.decoder.decode(latents)
    assert ours.shape == (2, 3, 64, 64) and comps.decoder.scale_factor == 8
    assert relative_error(ours, ref) < FP16_REL
    images = ref.clamp(-1, 1)
    assert relative_error(comps.image_encoder.encode(images), torch_lcm.image_encoder.encode(images)) < FP16_REL


def test_the_sampler_loop_makes_the_torch_image(coreml, torch_lcm):
    from lcm_desktop.engine.engine import Engine

    comps, _ = coreml
    request = GenerationRequest("a red circle on a blue background", steps=2, seed=7)
    ours = Engine(loader=lambda: comps).generate(request)
    ref = Engine(loader=lambda: torch_lcm).generate(request)
    assert ours.backend == "coreml:REFERENCE" and ours.denoiser_calls == 2
    a = np.asarray(ours.images[0], dtype=np.float64)
    b = np.asarray(ref.images[0], dtype=np.float64)
    assert a.shape == b.shape == (64, 64, 3)
    from convert.validate import psnr

    # fp16 rounding moves pixels by about one 8-bit level: ~45 dB; a plumbing mistake is < 20 dB
    assert psnr(a, b) >= 40 and np.abs(a - b).max() <= 16
    other = Engine(loader=lambda: comps).generate(
        GenerationRequest("a red circle on a blue background", steps=2, seed=8)
    )
    assert np.abs(np.asarray(other.images[0], dtype=np.float64) - b).mean() > 5  # the seed matters


def test_only_the_first_load_compiles(coreml_lcm, lcm_wrappers, tmp_path):
    runtime = SubstituteRuntime(lcm_wrappers)
    cache = tmp_path / "cache"
    load_coreml_components(coreml_lcm, cache_dir=cache, runtime=runtime)
    assert sorted(runtime.compiled) == ["TextEncoder", "TinyDecoder", "Unet", "VAEDecoder", "VAEEncoder"]
    load_coreml_components(coreml_lcm, compute_units="CPU_ONLY", cache_dir=cache, runtime=runtime)
    assert len(runtime.compiled) == 5, "the second load reuses the compiled models"
    assert len(list(cache.glob("*/*.mlmodelc"))) == 5
    assert not list(cache.glob("*/.*")), "no half-compiled leftovers"
    load_coreml_components(coreml_lcm, cache_dir=tmp_path / "other-cache", runtime=runtime)
    assert len(runtime.compiled) == 10


def test_a_size_that_was_not_converted_is_a_clear_error(coreml):
    from lcm_desktop.engine.engine import Engine

    comps, _ = coreml
    with pytest.raises(InvalidRequestError, match="64x64.*--size"):
        Engine(loader=lambda: comps).generate(GenerationRequest("a cat", steps=1, width=128, height=128))
    with pytest.raises(InvalidRequestError, match="64x64.*--size"):
        comps.denoiser(
            torch.zeros(1, 4, 16, 16), torch.tensor(999), torch.zeros(1, 77, 32), timestep_cond=torch.zeros(1, 32)
        )


def test_wrong_inputs_are_clear_errors(coreml):
    comps, _ = coreml
    den = comps.denoiser
    with pytest.raises(InvalidRequestError, match="timestep_cond"):
        den(torch.zeros(1, 4, 8, 8), torch.tensor(999), torch.zeros(1, 77, 32))
    with pytest.raises(InvalidRequestError, match=r"Unet.encoder_hidden_states.*\(1, 32, 1, 77\)"):
        den(torch.zeros(1, 4, 8, 8), torch.tensor(999), torch.zeros(1, 77, 48), timestep_cond=torch.zeros(1, 32))
    with pytest.raises(InvalidRequestError, match="dtype bool"):
        den.model(sample=torch.zeros(1, 4, 8, 8, dtype=torch.bool), timestep=torch.zeros(1),
                  encoder_hidden_states=torch.zeros(1, 32, 1, 77), timestep_cond=torch.zeros(1, 32))
    with pytest.raises(InvalidRequestError, match="VAEDecoder.z"):
        comps.decoder.decode(torch.zeros(1, 4, 9, 8))


def test_a_predictor_that_breaks_the_manifest_is_a_clear_error(coreml_lcm, lcm_wrappers, tmp_path):
    class Broken(SubstituteRuntime):
        def load(self, compiled, compute_units):
            inner = super().load(compiled, compute_units)
            return type("P", (), {"predict": lambda _, d: {k + "_x": v for k, v in inner.predict(d).items()}})()

    comps = load_coreml_components(coreml_lcm, cache_dir=tmp_path, runtime=Broken(lcm_wrappers))
    with pytest.raises(ModelFormatError, match="returned no 'image'"):
        comps.decoder.decode(torch.zeros(1, 4, 8, 8))


def test_folder_and_option_errors(coreml_lcm, lcm_wrappers, tmp_path):
    runtime = SubstituteRuntime(lcm_wrappers)
    with pytest.raises(InvalidRequestError, match="compute_units"):
        load_coreml_components(coreml_lcm, compute_units="NE_ONLY", cache_dir=tmp_path, runtime=runtime)
    with pytest.raises(ModelFormatError, match="no manifest.json"):
        load_coreml_components(tmp_path, cache_dir=tmp_path, runtime=runtime)
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(coreml_lcm, broken)
    shutil.rmtree(broken / "Unet.mlpackage")
    with pytest.raises(ModelFormatError, match="Unet.mlpackage is missing"):
        load_coreml_components(broken, cache_dir=tmp_path, runtime=runtime)


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML exists on macOS")
def test_default_runtime_off_a_mac_says_so(coreml_lcm, tmp_path):
    with pytest.raises(BackendUnavailableError, match="needs macOS"):
        CoreMLToolsRuntime()
    with pytest.raises(BackendUnavailableError, match="PyTorch backend"):
        load_coreml_components(coreml_lcm, cache_dir=tmp_path)


def test_sdxl_components_match_torch(tmp_path_factory, tiny_sdxl, tmp_path):
    from lcm_desktop.engine.torch_backend import load_torch_components

    folder = converted(tmp_path_factory, tiny_sdxl, components=("text_encoder", "unet", "vae_decoder"))
    comps = load_coreml_components(folder, compute_units="REFERENCE", cache_dir=tmp_path)
    ref = load_torch_components(tiny_sdxl, device="cpu", dtype="float32")
    assert comps.family == "sdxl" and comps.denoiser.info.addition_time_embed and comps.image_encoder is None
    ours, theirs = comps.text_encoder.encode("a dog"), ref.text_encoder.encode("a dog")
    assert ours.hidden_states.shape == theirs.hidden_states.shape == (1, 77, 64)
    assert relative_error(ours.hidden_states, theirs.hidden_states) < FP16_REL
    assert relative_error(ours.pooled, theirs.pooled) < FP16_REL
    g = torch.Generator().manual_seed(5)
    args = (torch.randn(1, 4, 8, 8, generator=g), torch.tensor(499), theirs.hidden_states)
    kwargs = {"text_embeds": theirs.pooled, "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])}
    assert relative_error(comps.denoiser(*args, **kwargs), ref.denoiser(*args, **kwargs)) < FP16_REL
    # the whole loop (size conditioning, pooled embeddings) through the same sampler
    from convert.validate import psnr
    from lcm_desktop.engine.engine import Engine

    request = GenerationRequest("a dog on the moon", steps=2, seed=3)
    ours = np.asarray(Engine(loader=lambda: comps).generate(request).images[0], dtype=np.float64)
    theirs = np.asarray(Engine(loader=lambda: ref).generate(request).images[0], dtype=np.float64)
    assert ours.shape == (64, 64, 3) and psnr(ours, theirs) >= 40


@pytest.mark.macos
def test_real_core_ml_matches_torch(coreml_lcm, torch_lcm, tmp_path):
    """On a Mac: the real runtime (compiled into the cache) against PyTorch, PSNR ≥ 35 dB on the image."""
    from convert.validate import psnr

    comps = load_coreml_components(coreml_lcm, compute_units="CPU_ONLY", cache_dir=tmp_path)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    assert psnr(comps.decoder.decode(latents).numpy(), torch_lcm.decoder.decode(latents).numpy()) >= 35
    request = GenerationRequest("a red circle", steps=2, seed=7)
    from lcm_desktop.engine.engine import Engine

    ours = np.asarray(Engine(loader=lambda: comps).generate(request).images[0], dtype=np.float64)
    ref = np.asarray(Engine(loader=lambda: torch_lcm).generate(request).images[0], dtype=np.float64)
    assert psnr(ours, ref) >= 35


def test_a_folder_in_apple_layout_loads_without_a_manifest(coreml_lcm, apple_layout_folder, tmp_path):
    """Packages named as Apple's torch2coreml names them, with only vocab.json + merges.txt beside them."""
    import shutil

    apple = load_coreml_components(apple_layout_folder, compute_units="REFERENCE", cache_dir=tmp_path / "cache")
    ours = load_coreml_components(coreml_lcm, compute_units="REFERENCE", cache_dir=tmp_path / "cache2")
    m = apple.extras["manifest"]
    assert (m.family, m.attention, m.width, m.time_cond_proj_dim, m.vae_scaling_factor) == (
        "sd",
        "split_einsum",
        64,
        32,
        0.18215,
    )
    assert apple.scheduler_config["_class_name"] == "LCMScheduler" and apple.image_encoder is None
    assert torch.equal(
        apple.text_encoder.encode("a red cat").hidden_states, ours.text_encoder.encode("a red cat").hidden_states
    )
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(apple.decoder.decode(latents), ours.decoder.decode(latents))
    folder = apple_layout_folder
    shutil.rmtree(folder / "Stable_Diffusion_version_tiny_unet.mlpackage")
    shutil.copytree(coreml_lcm / "Unet.mlpackage", folder / "Stable_Diffusion_version_tiny_unet_chunk1.mlpackage")
    with pytest.raises(ModelFormatError, match="chunked UNet"):
        load_coreml_components(folder, compute_units="REFERENCE", cache_dir=tmp_path / "cache")


def test_a_two_row_unet_runs_cfg_in_one_call_and_one_row_padded(coreml_sd_lcm_lora, tiny_sd, tiny_sd_lcm_lora):
    """--batch-size 2 (classic CFG, as an LCM-LoRA model at guidance > 1 runs; Apple's default UNet batch), on a
    plain UNet with an LCM-LoRA fused: the reference is diffusers' UNet with that LoRA loaded."""
    from diffusers import StableDiffusionPipeline

    from lcm_desktop.core.manifest import load_manifest
    from lcm_desktop.engine.coreml_backend import CoreMLDenoiser, CoreMLModel
    from lcm_desktop.engine.coreml_reference import ReferenceRuntime

    folder = coreml_sd_lcm_lora
    spec = load_manifest(folder).require("Unet")
    assert spec.input("sample").shape == (2, 4, 8, 8)
    den = CoreMLDenoiser(
        CoreMLModel(spec, ReferenceRuntime().load(folder / spec.file, "REFERENCE")), load_manifest(folder)
    )
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd, safety_checker=None, requires_safety_checker=False)
    pipe.load_lora_weights(str(tiny_sd_lcm_lora))

    def ref(sample, t, hidden):
        with torch.no_grad():
            return pipe.unet(sample, t, hidden).sample

    assert den.info.time_cond_proj_dim is None and den.info.fixed_shape == (2, 4, 8, 8)
    g = torch.Generator().manual_seed(6)
    sample, hidden = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 77, 32, generator=g)
    assert relative_error(den(sample, torch.tensor(999), hidden), ref(sample, torch.tensor(999), hidden)) < FP16_REL
    assert den.calls == 1  # both CFG rows in one call
    one = den(sample[:1], torch.tensor(999), hidden[:1])  # an LCM-LoRA row at guidance 1: padded to two
    assert one.shape == (1, 4, 8, 8) and den.calls == 2
    assert relative_error(one, ref(sample[:1], torch.tensor(999), hidden[:1])) < FP16_REL


def test_vaes_with_latents_mean_and_std_are_unscaled_as_diffusers_does(coreml):
    from dataclasses import replace

    from lcm_desktop.engine.coreml_backend import CoreMLDecoder

    comps, _ = coreml
    plain = comps.decoder
    manifest = replace(
        comps.extras["manifest"], vae_latents_mean=(0.1, -0.2, 0.3, 0.0), vae_latents_std=(2.0, 1.0, 0.5, 1.5)
    )
    shifted = CoreMLDecoder(plain.model, manifest)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    mean, std = (torch.tensor(v).view(1, 4, 1, 1) for v in (manifest.vae_latents_mean, manifest.vae_latents_std))
    # diffusers: z = latents · std / scaling + mean; the plain decoder computes z = x / scaling
    expected = plain.decode(latents * std + mean * plain.scaling_factor)
    assert torch.allclose(shifted.decode(latents), expected, atol=1e-6)
    assert not torch.allclose(plain.decode(latents), expected, atol=1e-2)


def test_tiny_decoder_matches_torch_and_serves_fast_decodes(coreml, tiny_taesd, torch_lcm):
    from lcm_desktop.engine.engine import Engine
    from lcm_desktop.engine.torch_backend import load_tiny_decoder

    comps, _ = coreml
    ref = load_tiny_decoder(tiny_taesd, torch.device("cpu"), torch.float32)
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(9))
    ours = comps.tiny_decoder.decode(latents)
    assert ours.shape == (2, 3, 64, 64) and relative_error(ours, ref.decode(latents)) < FP16_REL
    assert relative_error(ours, comps.decoder.decode(latents)) > 0.1  # really the tiny decoder, not the VAE
    result = Engine(loader=lambda: comps).generate(GenerationRequest("a cat", steps=1, seed=1, tiny_decoder=True))
    assert result.images[0].size == (64, 64)


def test_image_to_image_through_the_core_ml_encoder(coreml_lcm, lcm_wrappers, torch_lcm, tmp_path):
    """The VAEEncoder package gives the moments; sampling with the request's generators and scaling stay in
    Python, so Core ML img2img makes the PyTorch backend's image (substitute runtime: the wrappers in fp16)."""
    from PIL import Image

    from lcm_desktop.engine.engine import Engine

    comps = load_coreml_components(coreml_lcm, cache_dir=tmp_path / "cache", runtime=SubstituteRuntime(lcm_wrappers))
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    gens = lambda: [torch.Generator().manual_seed(s) for s in (5, 6)]  # noqa: E731
    ours, ref = comps.image_encoder.encode(images, gens()), torch_lcm.image_encoder.encode(images, gens())
    assert ours.shape == (2, 4, 8, 8) and relative_error(ours, ref) < FP16_REL
    assert relative_error(ours[1], ours[0]) > 0.01  # each image its own sample of the posterior
    start = Image.new("RGB", (64, 64), (200, 40, 30))
    request = GenerationRequest("a red circle", steps=2, seed=7, init_image=start, strength=0.5)
    a = np.asarray(Engine(loader=lambda: comps).generate(request).images[0], dtype=np.float64)
    b = np.asarray(Engine(loader=lambda: torch_lcm).generate(request).images[0], dtype=np.float64)
    from convert.validate import psnr

    assert psnr(a, b) >= 40
