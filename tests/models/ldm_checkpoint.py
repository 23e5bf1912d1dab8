"""Write a diffusers SD/SDXL folder as one original-layout (LDM/A1111) ``.safetensors`` checkpoint.

The inverse of diffusers' single-file conversion, for the SD1.x and SDXL families at any width
and depth (our tiny test models have 2 UNet levels, 1 layer per block).  Keys:
``model.diffusion_model.*`` (UNet), ``first_stage_model.*`` (VAE), and the text encoders:
SD1.x ``cond_stage_model.transformer.*`` (CLIP); SDXL ``conditioner.embedders.0.transformer.*``
(CLIP-L) and ``conditioner.embedders.1.model.*`` (OpenCLIP-G: fused q/k/v, transposed
projection).  Written from the LDM layout's rules, so the importer's round trip through
diffusers' ``from_single_file`` is checked against an independent mapping.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0", "conv2": "out_layers.3",
          "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
UNET_TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
            "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
            "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def unet_key(key: str, config: dict) -> str:
    levels, per_block = len(config["block_out_channels"]), config["layers_per_block"]
    up_has_attention = ["CrossAttn" in t for t in config["up_block_types"]]
    for old, new in UNET_TOP.items():
        if key.startswith(old + "."):
            return new + key[len(old):]
    m = re.match(r"(down|up)_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key)
    if m:
        side, i, part, j, rest = m.group(1), int(m.group(2)), m.group(3), int(m.group(4)), m.group(5)
        block = i * (per_block + 1) + j + (1 if side == "down" else 0)
        prefix = f"{'input' if side == 'down' else 'output'}_blocks.{block}.{0 if part == 'resnets' else 1}"
        return f"{prefix}.{_resnet(rest) if part == 'resnets' else rest}"
    m = re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key)
    if m:
        return f"input_blocks.{(int(m.group(1)) + 1) * (per_block + 1)}.0.op.{m.group(2)}"
    m = re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.(.*)", key)
    if m:
        i = int(m.group(1))
        return f"output_blocks.{i * (per_block + 1) + per_block}.{2 if up_has_attention[i] else 1}.{m.group(2)}"
    m = re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", key)
    if m:
        if m.group(1) == "attentions":
            return f"middle_block.1.{m.group(3)}"
        return f"middle_block.{2 * int(m.group(2))}.{_resnet(m.group(3))}"
    raise KeyError(f"no LDM name for UNet key {key} (levels={levels})")


def vae_key(key: str, levels: int) -> tuple[str, bool]:
    """LDM name, and whether the weight is a 1×1 conv in LDM (mid-block attention projections)."""
    key = key.replace("conv_norm_out", "norm_out")
    m = re.match(r"(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.*)", key)
    if m:
        coder, part, j, rest = m.groups()
        if part == "resnets":
            return f"{coder}.mid.block_{int(j) + 1}.{rest.replace('conv_shortcut', 'nin_shortcut')}", False
        name, _, param = rest.rpartition(".")
        return f"{coder}.mid.attn_1.{VAE_ATTENTION[name]}.{param}", name != "group_norm" and param == "weight"
    m = re.match(r"encoder\.down_blocks\.(\d+)\.(resnets\.(\d+)|downsamplers\.0)\.(.*)", key)
    if m:
        i, rest = int(m.group(1)), m.group(4).replace("conv_shortcut", "nin_shortcut")
        where = f"block.{m.group(3)}" if m.group(3) is not None else "downsample"
        return f"encoder.down.{i}.{where}.{rest}", False
    m = re.match(r"decoder\.up_blocks\.(\d+)\.(resnets\.(\d+)|upsamplers\.0)\.(.*)", key)
    if m:
        i, rest = int(m.group(1)), m.group(4).replace("conv_shortcut", "nin_shortcut")
        where = f"block.{m.group(3)}" if m.group(3) is not None else "upsample"
        return f"decoder.up.{levels - 1 - i}.{where}.{rest}", False
    return key, False


def _resnet(rest: str) -> str:
    name, _, param = rest.partition(".")
    return f"{RESNET.get(name, name)}.{param}"


def write_ldm_checkpoint(model: Path, out: Path) -> Path:
    from safetensors.torch import load_file, save_file

    model = Path(model)
    unet_config = json.loads((model / "unet" / "config.json").read_text())
    vae_config = json.loads((model / "vae" / "config.json").read_text())
    sdxl = (model / "text_encoder_2").is_dir()
    state = {}
    for key, value in load_file(model / "unet" / "diffusion_pytorch_model.safetensors").items():
        state["model.diffusion_model." + unet_key(key, unet_config)] = value
    for key, value in load_file(model / "vae" / "diffusion_pytorch_model.safetensors").items():
        name, conv = vae_key(key, len(vae_config["block_out_channels"]))
        state["first_stage_model." + name] = value.reshape(*value.shape, 1, 1) if conv else value
    clip_prefix = "conditioner.embedders.0.transformer." if sdxl else "cond_stage_model.transformer."
    for key, value in load_file(model / "text_encoder" / "model.safetensors").items():
        # transformers ≥ 5.6 saves CLIPTextModel without its old ``text_model.`` level; LDM files keep it
        state[clip_prefix + ("" if key.startswith("text_model.") else "text_model.") + key] = value
    if sdxl:
        state.update(_open_clip(load_file(model / "text_encoder_2" / "model.safetensors"),
                                "conditioner.embedders.1.model."))
    save_file({k: v.contiguous() for k, v in state.items()}, str(out))
    return Path(out)


def _open_clip(weights: dict, prefix: str) -> dict:
    """CLIPTextModelWithProjection weights in OpenCLIP's naming."""
    import torch

    weights = {k.removeprefix("text_model."): v for k, v in weights.items()}
    out = {prefix + "token_embedding.weight": weights.pop("embeddings.token_embedding.weight"),
           prefix + "positional_embedding": weights.pop("embeddings.position_embedding.weight"),
           prefix + "ln_final.weight": weights.pop("final_layer_norm.weight"),
           prefix + "ln_final.bias": weights.pop("final_layer_norm.bias"),
           prefix + "text_projection": weights.pop("text_projection.weight").T}
    layers = sorted({int(k.split(".")[2]) for k in weights if k.startswith("encoder.layers.")})
    for i in layers:
        src, dst = f"encoder.layers.{i}.", f"{prefix}transformer.resblocks.{i}."
        for param in ("weight", "bias"):
            out[f"{dst}attn.in_proj_{param}"] = torch.cat(
                [weights.pop(f"{src}self_attn.{p}_proj.{param}") for p in ("q", "k", "v")])
            for old, new in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"),
                             ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
                out[f"{dst}{new}.{param}"] = weights.pop(f"{src}{old}.{param}")
    if weights:
        raise KeyError(f"no OpenCLIP names for {sorted(weights)[:5]}")
    return out
