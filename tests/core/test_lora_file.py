"""Reading style LoRA files from their header: formats, families, refusals, trigger words, A1111's hash."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from lcm_desktop.core.errors import ModelFormatError, UnsafeModelError
from lcm_desktop.core.lora_file import (
    LoraFormat,
    StyleMismatchError,
    check_lora_fits,
    inspect_lora,
    lora_hash,
    trigger_words,
)


def write_safetensors(path: Path, tensors: dict[str, tuple[int, ...]], metadata: dict | None = None,
                      data_byte: int = 0) -> Path:
    """A valid safetensors file of zero-filled fp16 tensors with these shapes (no torch needed)."""
    header, offset = {}, 0
    for name, shape in tensors.items():
        size = 2
        for d in shape:
            size *= d
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes([data_byte]) * offset)
    return path


def kohya_layer(name: str, in_dim: int, out_dim: int, rank: int = 8) -> dict[str, tuple[int, ...]]:
    return {f"{name}.lora_down.weight": (rank, in_dim), f"{name}.lora_up.weight": (out_dim, rank), f"{name}.alpha": ()}


def test_a1111_sd15_file(tmp_path):
    tensors = {**kohya_layer("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 768, 320),
               **kohya_layer("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 768, 768, rank=16)}
    tags = {"5_papercut": {"papercut": 50, "red": 2}, "3_extra": {"paper art": 10, "papercut": 1}}
    path = write_safetensors(tmp_path / "papercut.safetensors", tensors,
                             {"ss_tag_frequency": json.dumps(tags), "ss_sd_model_name": "v1-5-pruned.safetensors"})
    info = inspect_lora(path)
    assert (info.format, info.family, info.parts) == (LoraFormat.KOHYA, "sd", ("unet", "text_encoder"))
    assert (info.modules, info.rank, info.cross_attention_dim) == (2, 16, 768)
    assert info.trigger_words == ("papercut", "paper art", "red") and info.base_model == "v1-5-pruned.safetensors"
    assert info.family_label == "SD1.5-class" and info.name == "papercut"


@pytest.mark.parametrize("keys, family", [
    ({**kohya_layer("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768)}, "sdxl"),
    ({**kohya_layer("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 2048, 640)}, "sdxl"),
    ({**kohya_layer("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 1024, 640)}, "sd"),
    ({"text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight": (4, 1280),
      "text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight": (1280, 4)}, "sdxl"),
    ({"unet.down_blocks.1.attentions.0.transformer_blocks.1.attn1.to_q.lora_A.weight": (4, 64),
      "unet.down_blocks.1.attentions.0.transformer_blocks.1.attn1.to_q.lora_B.weight": (64, 4)}, "sdxl"),
    ({"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight": (4, 32),
      "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora.up.weight": (32, 4)}, "sd"),
    ({"unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": (4, 32),
      "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight": (32, 4)}, None),
])
def test_family_from_keys_and_shapes(tmp_path, keys, family):
    assert inspect_lora(write_safetensors(tmp_path / "s.safetensors", keys)).family == family


@pytest.mark.parametrize("key, what", [
    ("lora_unet_mid_block_attentions_0_proj_in.hada_w1_a", "LoHa"),
    ("lora_unet_mid_block_attentions_0_proj_in.lokr_w1", "LoKr"),
    ("lora_unet_mid_block_resnets_0_conv1.lora_mid.weight", "Tucker"),
    ("lora_unet_mid_block_resnets_0_conv1.diff", "full weight difference"),
])
def test_formats_diffusers_cannot_load_are_refused(tmp_path, key, what):
    path = write_safetensors(tmp_path / "lyco.safetensors", {key: (4, 4)})
    with pytest.raises(ModelFormatError, match=rf"lyco.safetensors is a .*{what}.*diffusers cannot load"):
        inspect_lora(path)


def test_not_a_lora_and_pickles_are_refused(tmp_path):
    weights = write_safetensors(tmp_path / "model.safetensors", {"model.diffusion_model.out.0.weight": (4,)})
    with pytest.raises(ModelFormatError, match=r"model.safetensors is not a LoRA diffusers can load .*'model.diff"):
        inspect_lora(weights)
    (tmp_path / "style.ckpt").write_bytes(b"\x80\x04")
    with pytest.raises(UnsafeModelError, match=r"style.ckpt: .ckpt files are Python pickles"):
        inspect_lora(tmp_path / "style.ckpt")
    (tmp_path / "style.txt").write_text("x")
    with pytest.raises(ModelFormatError, match="not a .safetensors LoRA"):
        inspect_lora(tmp_path / "style.txt")


def test_hash_is_a1111s_addnet_hash_of_the_tensor_data(tmp_path):
    tensors = kohya_layer("lora_unet_mid_block_attentions_0_proj_in", 8, 8)
    a = write_safetensors(tmp_path / "a.safetensors", tensors, data_byte=1)
    b = write_safetensors(tmp_path / "b.safetensors", tensors, {"ss_output_name": "renamed"}, data_byte=1)
    c = write_safetensors(tmp_path / "c.safetensors", tensors, data_byte=2)
    data = a.read_bytes()
    expected = hashlib.sha256(data[8 + struct.unpack("<Q", data[:8])[0]:]).hexdigest()[:12]
    assert lora_hash(a) == expected and len(expected) == 12
    assert lora_hash(b) == lora_hash(a)  # metadata edits keep the hash, as in A1111
    assert lora_hash(c) != lora_hash(a)


def test_trigger_words_tolerate_strangers_metadata():
    assert trigger_words({"ss_tag_frequency": "not json"}) == ()
    assert trigger_words({"ss_tag_frequency": json.dumps({"a": {"x": "many", "y": 2}, "b": [1]})}) == ("y",)
    assert trigger_words({}) == ()


def test_family_mismatch_names_both(tmp_path):
    info = inspect_lora(write_safetensors(
        tmp_path / "xl.safetensors", kohya_layer("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 1280, 1280)))
    with pytest.raises(StyleMismatchError, match="The style xl is made for SDXL-class models but dreamshaper is "
                                                 "SD1.5-class"):
        check_lora_fits(info, family="sd", model="dreamshaper")
    check_lora_fits(info, family="sdxl", model="sdxl-base")
    sd2 = inspect_lora(write_safetensors(
        tmp_path / "sd2.safetensors", kohya_layer("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k",
                                                  1024, 1280)))
    with pytest.raises(StyleMismatchError, match="text embeddings 1024 wide but dreamshaper takes 768"):
        check_lora_fits(sd2, family="sd", model="dreamshaper", cross_attention_dim=768)
