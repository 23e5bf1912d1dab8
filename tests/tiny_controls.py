"""Tiny control models for a tiny base (``tiny_models``): a ControlNet and a T2I-Adapter with random weights.

A fresh ControlNet's output convolutions are zero ("no control" until trained), which would make every parity
test pass vacuously, so they are drawn at random here too.
"""

from __future__ import annotations

from pathlib import Path

import torch


def make_tiny_controlnet(base: Path, path: Path, *, seed: int = 3, cross_attention_dim: int | None = None) -> Path:
    """A ControlNet shaped after ``base``'s UNet (64 px control images → 8×8), random everywhere."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(Path(base) / "unet")
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 8, 8, 8),
                                    load_weights_from_unet=False)
    if cross_attention_dim is not None:  # a misfit: the same blocks, another text width
        config = dict(net.config)
        config["cross_attention_dim"] = cross_attention_dim
        net = ControlNetModel.from_config(config)
    with torch.no_grad():
        for name, param in net.named_parameters():
            if name.startswith(("controlnet_down_blocks", "controlnet_mid_block",
                                "controlnet_cond_embedding.conv_out")):
                param.normal_(0.0, 0.2)
    net.save_pretrained(path, safe_serialization=True)
    return Path(path)


def make_tiny_adapter(base: Path, path: Path, *, seed: int = 4, in_channels: int = 3) -> Path:
    """A full T2I-Adapter whose channels are ``base``'s UNet block widths (64 px → 8×8 features)."""
    import json

    from diffusers import T2IAdapter

    torch.manual_seed(seed)
    blocks = json.loads((Path(base) / "unet" / "config.json").read_text())["block_out_channels"]
    adapter = T2IAdapter(in_channels=in_channels, channels=list(blocks), num_res_blocks=1, downscale_factor=8,
                         adapter_type="full_adapter")
    adapter.save_pretrained(path, safe_serialization=True)
    return Path(path)
