"""`python -m convert` on the tiny models: files, manifest, saved spec, tokenizer, palettization."""

from __future__ import annotations

import json

import pytest

from lcm_desktop.core.manifest import load_manifest


def _spec_io(package):
    from convert.export import read_package_io

    inputs, outputs = read_package_io(package)
    return {s.name: (s.shape, s.dtype) for s in inputs}, {s.name: (s.shape, s.dtype) for s in outputs}


def test_folder_has_apple_layout_tokenizer_scheduler_and_manifest(coreml_lcm, tiny_lcm):
    names = {p.name for p in coreml_lcm.iterdir()}
    assert {
        "TextEncoder.mlpackage",
        "Unet.mlpackage",
        "VAEDecoder.mlpackage",
        "VAEEncoder.mlpackage",
        "TinyDecoder.mlpackage",
        "vocab.json",
        "merges.txt",
        "tokenizer",
        "scheduler",
        "manifest.json",
        "lcm_desktop.json",
    } <= names
    assert not [n for n in names if n.startswith(".")], "no temporary files are left behind"
    assert json.loads((coreml_lcm / "scheduler" / "scheduler_config.json").read_text())["_class_name"] == "LCMScheduler"
    assert json.loads((coreml_lcm / "lcm_desktop.json").read_text()) == {"width": 64, "height": 64, "steps": 4,
                                                                         "guidance_scale": 8.5}
    # Apple's vocab.json + merges.txt tokenize exactly as the model's own tokenizer does
    from transformers import CLIPTokenizer

    vocab = json.loads((coreml_lcm / "vocab.json").read_text())
    lines = (coreml_lcm / "merges.txt").read_text().splitlines()
    assert lines[0].startswith("#version")
    apple = CLIPTokenizer(vocab=vocab, merges=[tuple(line.split()) for line in lines[1:]], model_max_length=77)
    original = CLIPTokenizer.from_pretrained(tiny_lcm / "tokenizer")
    prompt = "a red cat riding a horse, photo"
    ids = original(prompt, padding="max_length", max_length=77).input_ids
    assert apple(prompt, padding="max_length", max_length=77).input_ids == ids
    assert len(set(ids[:9])) > 5  # real words became real tokens


def test_manifest_describes_the_conversion(coreml_lcm, tiny_lcm, tiny_taesd):
    m = load_manifest(coreml_lcm)
    assert (m.family, m.attention, m.precision, m.palettization_bits) == ("sd", "split_einsum", "float16", None)
    assert (m.width, m.height, m.batch_size, m.time_cond_proj_dim, m.vae_scale_factor) == (64, 64, 1, 32, 8)
    assert m.vae_scaling_factor == pytest.approx(0.18215)
    assert m.source.path == str(tiny_lcm.resolve()) and len(m.source.content_hash) == 64
    assert m.source.tiny_decoder == str(tiny_taesd.resolve()) and m.tiny_decoder_scaling_factor == 1.0
    assert [c.name for c in m.components] == ["TextEncoder", "Unet", "VAEDecoder", "VAEEncoder", "TinyDecoder"]
    assert m.coremltools_version == "9.0" and m.minimum_deployment_target == "macOS14"
    unet = m.require("Unet")
    assert [(s.name, s.shape) for s in unet.inputs] == [
        ("sample", (1, 4, 8, 8)), ("timestep", (1,)), ("encoder_hidden_states", (1, 32, 1, 77)),
        ("timestep_cond", (1, 32)),
    ]
    assert [(s.name, s.shape) for s in unet.outputs] == [("noise_pred", (1, 4, 8, 8))]
    for comp in m.components:
        assert comp.size_bytes > 0 and len(comp.sha256) == 64
        checks = [p for p in comp.parity if p.check == "traced_vs_eager"]
        assert checks and all(p.passed and p.value < 1e-4 for p in checks), comp.name
        assert {p.output for p in checks} == {s.name for s in comp.outputs}


@pytest.mark.parametrize("name, inputs, outputs", [
    ("TextEncoder", {"input_ids": ((1, 77), "float32")},
     {"last_hidden_state": ((1, 77, 32), "float32"), "pooled_outputs": ((1, 32), "float32")}),
    ("Unet", {"sample": ((1, 4, 8, 8), "float32"), "timestep": ((1,), "float32"),
              "encoder_hidden_states": ((1, 32, 1, 77), "float32"), "timestep_cond": ((1, 32), "float32")},
     {"noise_pred": ((1, 4, 8, 8), "float32")}),
    ("VAEDecoder", {"z": ((1, 4, 8, 8), "float32")}, {"image": ((1, 3, 64, 64), "float32")}),
    ("VAEEncoder", {"x": ((1, 3, 64, 64), "float32")}, {"latent": ((1, 8, 8, 8), "float32")}),
    ("TinyDecoder", {"z": ((1, 4, 8, 8), "float32")}, {"image": ((1, 3, 64, 64), "float32")}),
])
def test_saved_spec_has_apple_names_shapes_and_dtypes(coreml_lcm, name, inputs, outputs):
    assert _spec_io(coreml_lcm / f"{name}.mlpackage") == (inputs, outputs)


def _op_types(package):
    import coremltools as ct

    spec = ct.utils.load_spec(str(package))
    main = spec.mlProgram.functions["main"]
    return [op.type for op in main.block_specializations[main.opset].operations]


def test_split_einsum_and_original_attention_give_different_graphs(coreml_lcm, coreml_lcm_original_6bit):
    split, original = _op_types(coreml_lcm / "Unet.mlpackage"), _op_types(coreml_lcm_original_6bit / "Unet.mlpackage")
    # split_einsum: one attention per head (4 heads × 3 attention layers × 2 matmuls); original: batched matmuls
    assert split.count("softmax") == 4 * original.count("softmax")
    assert load_manifest(coreml_lcm_original_6bit).attention == "original"


def test_palettized_packages_are_smaller_and_still_valid(coreml_lcm, coreml_lcm_original_6bit):
    m6 = load_manifest(coreml_lcm_original_6bit)
    m16 = load_manifest(coreml_lcm)
    assert m6.palettization_bits == 6
    unet6, unet16 = m6.require("Unet"), m16.require("Unet")
    assert unet6.size_bytes < 0.7 * unet16.size_bytes
    ops = _op_types(coreml_lcm_original_6bit / "Unet.mlpackage")
    assert "constexpr_lut_to_dense" in ops
    assert "constexpr_lut_to_dense" not in _op_types(coreml_lcm / "Unet.mlpackage")
    assert _spec_io(coreml_lcm_original_6bit / "Unet.mlpackage") == _spec_io(coreml_lcm / "Unet.mlpackage")


def test_sdxl_converts_both_text_encoders_and_the_size_conditioned_unet(coreml_sdxl):
    m = load_manifest(coreml_sdxl)
    assert m.family == "sdxl" and m.time_cond_proj_dim is None
    assert [c.name for c in m.components] == ["TextEncoder", "TextEncoder2", "Unet", "VAEDecoder"]
    for name in ("TextEncoder", "TextEncoder2"):
        _, outputs = _spec_io(coreml_sdxl / f"{name}.mlpackage")
        assert outputs == {"hidden_embeds": ((1, 77, 32), "float32"), "pooled_outputs": ((1, 32), "float32")}
    inputs, _ = _spec_io(coreml_sdxl / "Unet.mlpackage")
    assert inputs == {
        "sample": ((1, 4, 8, 8), "float32"), "timestep": ((1,), "float32"),
        "encoder_hidden_states": ((1, 64, 1, 77), "float32"), "time_ids": ((1, 6), "float32"),
        "text_embeds": ((1, 32), "float32"),
    }
    assert (coreml_sdxl / "tokenizer_2").is_dir()


def test_sdxl_vae_keeps_fp32_compute_where_fp16_overflows(coreml_sdxl, coreml_lcm):
    """SDXL's VAE config sets force_upcast: its package computes in fp32 (no fp16 casts), the rest in fp16."""
    sdxl = load_manifest(coreml_sdxl)
    assert [(c.name, c.precision) for c in sdxl.components] == [
        ("TextEncoder", "float16"), ("TextEncoder2", "float16"), ("Unet", "float16"), ("VAEDecoder", "float32")]
    assert "cast" not in _op_types(coreml_sdxl / "VAEDecoder.mlpackage")
    assert "cast" in _op_types(coreml_sdxl / "Unet.mlpackage")
    assert load_manifest(coreml_lcm).require("VAEDecoder").precision == "float16"
    assert "cast" in _op_types(coreml_lcm / "VAEDecoder.mlpackage")
