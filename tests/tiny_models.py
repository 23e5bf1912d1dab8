"""Tiny diffusers-format models built from configs with random weights (seeded).

The shape of diffusers' own ``get_dummy_components``: real classes, tiny widths, so a whole
pipeline runs in milliseconds on a CPU.  VAEs downsample 8× like Stable Diffusion's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lcm_desktop.core.clip_vocab import BOS, EOS, word_level_vocab, write_tokenizer_files

WORDS = (
    "a an the of on in with and , . photo painting cat dog red green blue yellow circle square "
    "triangle large small background top bottom left right center astronaut horse riding moon "
    "castle forest sunset portrait ugly blurry"
).split()


def _tokenizer_and_text_config(path: Path, hidden: int = 32, projection_dim: int | None = None):
    from transformers import CLIPTextConfig

    vocab, merges = word_level_vocab(WORDS)
    write_tokenizer_files(path, vocab, merges)
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=vocab[BOS],
        eos_token_id=vocab[EOS],
        pad_token_id=vocab[EOS],
        projection_dim=projection_dim or hidden,
        hidden_act="gelu",
    )
    return config


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[8, 8, 16, 16],
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=0.18215,
    )


def _lcm_scheduler():
    from diffusers import LCMScheduler

    return LCMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=True,
        steps_offset=0,
        original_inference_steps=50,
        timestep_spacing="leading",
    )


def _euler_scheduler():
    """What an SD1.5/SDXL base ships with: the engine must swap in LCMScheduler itself."""
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading"
    )


def make_tiny_sd(path: Path, *, time_cond_proj_dim: int | None = 32, seed: int = 0, clip_mean: float = 0.0,
                 in_channels: int = 4) -> Path:
    """An SD1.5-class model: a guidance-embedding LCM by default, a plain UNet with ``None``.

    ``in_channels=9``: an inpainting UNet (latents + mask + masked-picture latents), saved as diffusers'
    ``StableDiffusionInpaintPipeline``.

    ``clip_mean``: the text encoder's final layer-norm bias is drawn around it (a fresh model's is 0, so every
    token's state has mean 0 — a trained CLIP's does not, and AUTOMATIC1111's emphasis divides by that mean).
    """
    from diffusers import LatentConsistencyModelPipeline, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    path = Path(path)
    torch.manual_seed(seed)
    text_config = _tokenizer_and_text_config(path / "_tok")
    tokenizer = CLIPTokenizer.from_pretrained(path / "_tok")
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
        time_cond_proj_dim=time_cond_proj_dim,
    )
    parts = dict(
        vae=_vae(), text_encoder=CLIPTextModel(text_config), tokenizer=tokenizer, unet=unet,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    if clip_mean:
        bias = parts["text_encoder"].get_parameter("final_layer_norm.bias")
        with torch.no_grad():
            bias.copy_(clip_mean + 0.1 * torch.randn(bias.shape, generator=torch.Generator().manual_seed(seed)))
    if in_channels != 4:
        from diffusers import StableDiffusionInpaintPipeline

        scheduler = _euler_scheduler() if time_cond_proj_dim is None else _lcm_scheduler()
        pipe = StableDiffusionInpaintPipeline(scheduler=scheduler, **parts)
    elif time_cond_proj_dim is None:
        pipe = StableDiffusionPipeline(scheduler=_euler_scheduler(), **parts)
    else:
        pipe = LatentConsistencyModelPipeline(scheduler=_lcm_scheduler(), **parts)
    pipe.save_pretrained(path, safe_serialization=True)
    _rmtree(path / "_tok")
    return path


def make_tiny_sdxl(path: Path, *, time_cond_proj_dim: int | None = None, seed: int = 0) -> Path:
    """An SDXL-class model: two text encoders, pooled embeddings, size conditioning."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    path = Path(path)
    torch.manual_seed(seed)
    config_1 = _tokenizer_and_text_config(path / "_tok", hidden=32)
    config_2 = _tokenizer_and_text_config(path / "_tok", hidden=32, projection_dim=32)
    tokenizer = CLIPTokenizer.from_pretrained(path / "_tok")
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + 32,
        cross_attention_dim=64,
        norm_num_groups=8,
        time_cond_proj_dim=time_cond_proj_dim,
    )
    scheduler = _lcm_scheduler() if time_cond_proj_dim else _euler_scheduler()
    pipe = StableDiffusionXLPipeline(
        vae=_vae(), text_encoder=CLIPTextModel(config_1), text_encoder_2=CLIPTextModelWithProjection(config_2),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(path, safe_serialization=True)
    _rmtree(path / "_tok")
    return path


def make_tiny_taesd(path: Path, seed: int = 0) -> Path:
    """A tiny ``AutoencoderTiny`` (TAESD architecture, narrow)."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    taesd = AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
        latent_channels=4,
    )
    taesd.save_pretrained(path, safe_serialization=True)
    return Path(path)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def make_tiny_lora(base: Path, out: Path, seed: int = 1) -> Path:
    """A random LoRA for ``base``'s UNet, saved as LCM-LoRAs are (``pytorch_lora_weights.safetensors``)."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(Path(base) / "unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    state = get_peft_model_state_dict(unet)
    state = {k: torch.randn_like(v) * 0.1 if "lora_B" in k else v for k, v in state.items()}
    pipeline = StableDiffusionXLPipeline if (Path(base) / "text_encoder_2").is_dir() else StableDiffusionPipeline
    pipeline.save_lora_weights(out, unet_lora_layers=state, safe_serialization=True)
    return Path(out) / "pytorch_lora_weights.safetensors"


LCM_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
                    "conv1", "conv2", "time_emb_proj"]


def make_tiny_lcm_lora(base: Path, out: Path, seed: int = 1) -> Path:
    """A random LoRA over most of ``base``'s UNet (attention, feed-forward, resnet convs, time embedding), saved
    as diffusers saves LCM-LoRAs (``pytorch_lora_weights.safetensors``, diffusers key names)."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(Path(base) / "unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=LCM_LORA_TARGETS))
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    state = {k: torch.randn_like(v) * 0.1 if "lora_B" in k or "lora.up" in k else v for k, v in state.items()}
    pipeline = StableDiffusionXLPipeline if (Path(base) / "text_encoder_2").is_dir() else StableDiffusionPipeline
    pipeline.save_lora_weights(out, unet_lora_layers=state, safe_serialization=True)
    return Path(out) / "pytorch_lora_weights.safetensors"


def converted(tmp_path_factory, source: Path, **options) -> Path:
    """The folder ``python -m convert`` makes of ``source`` with ``options``; converted on first use.

    Keyed under the session's base temp folder, so every test directory reuses the same conversions.
    """
    import hashlib

    from convert.conversion import run
    from convert.options import ConvertOptions

    key = hashlib.sha256(repr((str(source), sorted(options.items()))).encode()).hexdigest()[:12]
    out = tmp_path_factory.getbasetemp() / "coreml-conversions" / f"{Path(source).name}-{key}"
    if not (out / "manifest.json").is_file():
        run(ConvertOptions(source=source, out=out, **options))
    return out


def wrappers_for(folder: Path) -> dict:
    """Component name → the wrapper (fp32, attention installed) the conversion of ``folder`` captured."""
    from convert.components import build_wrappers
    from convert.options import ConvertOptions
    from lcm_desktop.core.manifest import load_manifest

    m = load_manifest(folder)
    comps = {"TextEncoder": "text_encoder", "Unet": "unet", "VAEDecoder": "vae_decoder", "VAEEncoder": "vae_encoder"}
    options = ConvertOptions(source=Path(m.source.path), out=folder, attention=m.attention,
                             components=tuple(comps[c.name] for c in m.components if c.name in comps),
                             tiny_decoder=m.source.tiny_decoder, batch_size=m.batch_size,
                             max_prompt_chunks=m.max_prompt_chunks or 1)
    return build_wrappers(options)


STYLE_UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
STYLE_TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def make_tiny_style(base: Path, out: Path, *, seed: int = 1, rank: int = 4, alpha: float = 4.0,
                    text_encoder: bool = True, scale: float = 0.3) -> Path:
    """A random style LoRA for ``base`` (UNet attention and, by default, the text encoder(s)) made through
    PEFT with non-zero B matrices, saved in diffusers format as ``out`` (a ``.safetensors`` file)."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    base, out = Path(base), Path(out)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(base / "unet")
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                target_modules=STYLE_UNET_TARGETS))
    layers = {"unet_lora_layers": get_peft_model_state_dict(unet)}
    sdxl = (base / "text_encoder_2").is_dir()
    if text_encoder:
        for folder, cls, kw in (("text_encoder", CLIPTextModel, "text_encoder_lora_layers"),
                                ("text_encoder_2", CLIPTextModelWithProjection, "text_encoder_2_lora_layers")):
            if not (base / folder).is_dir():
                continue
            encoder = cls.from_pretrained(base / folder)
            config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                target_modules=STYLE_TEXT_TARGETS)
            inject_adapter_in_model(config, encoder)
            layers[kw] = get_peft_model_state_dict(encoder)
    layers = {kw: {k: torch.randn_like(v) * scale if "lora_B" in k else v for k, v in state.items()}
              for kw, state in layers.items()}
    pipeline = StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline
    out.parent.mkdir(parents=True, exist_ok=True)
    pipeline.save_lora_weights(out.parent, weight_name=out.name, safe_serialization=True, **layers)
    return out


def to_kohya(source: Path, out: Path, *, sdxl: bool = False) -> Path:
    """A diffusers/PEFT LoRA file rewritten with kohya/AUTOMATIC1111 keys (``lora_unet_…``, ``lora_te_…``
    or ``lora_te1_``/``lora_te2_``, ``.lora_down``/``.lora_up`` and an ``.alpha`` per layer), plus kohya metadata."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    prefixes = {"unet": "lora_unet_", "text_encoder": "lora_te1_" if sdxl else "lora_te_",
                "text_encoder_2": "lora_te2_"}
    tensors, rank = {}, {}
    with safe_open(str(source), "pt") as f:
        for key in f.keys():
            part, rest = key.split(".", 1)
            module, kind = rest.rsplit(".lora_", 1)
            if part.startswith("text_encoder") and not module.startswith("text_model."):
                module = "text_model." + module  # A1111 files name CLIP's layers from its text_model
            name = prefixes[part] + module.replace(".", "_")
            value = f.get_tensor(key)
            if kind.startswith("A"):
                tensors[f"{name}.lora_down.weight"] = value
                rank[name] = value.shape[0]
            else:
                tensors[f"{name}.lora_up.weight"] = value
    for name, r in rank.items():
        tensors[f"{name}.alpha"] = torch.tensor(float(r))
    metadata = {"ss_tag_frequency": json.dumps({"10_papercut": {"papercut": 40, "paper art": 12, "red": 3}}),
                "ss_sd_model_name": "tiny-base.safetensors", "ss_network_module": "networks.lora"}
    save_file(tensors, str(out), metadata=metadata)
    return Path(out)


def relative_error(a, b) -> float:
    """‖a − b‖ / ‖b‖ in float64 (tensors): how far a backend's output is from the reference's."""
    return ((a.double() - b.double()).norm() / b.double().norm()).item()
