"""Configs and builders of the demo model's components (exact diffusers/transformers classes).

Sizes are chosen for a 2-core CPU: 64×64 pictures, an 8× VAE (8×8×4 latents), a 2-layer
CLIP text encoder and a three-level UNet with cross-attention.
"""

from __future__ import annotations

from pathlib import Path

from convert.demo_model.data import IMAGE_SIZE, vocabulary

LATENT_CHANNELS = 4
LATENT_SIZE = IMAGE_SIZE // 8
TEXT_HIDDEN = 128
MAX_LENGTH = 77  # CLIP's length: the pipeline and our engine pad prompts to tokenizer.model_max_length
TIME_COND_PROJ_DIM = 256  # as LCM_Dreamshaper_v7

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(16, 32, 64, 64),
    layers_per_block=1,
    latent_channels=LATENT_CHANNELS,
    # Few groups: with one channel per group GroupNorm is an instance norm, which erases the
    # absolute colour of a flat picture (the first two VAEs we tried could not learn colours).
    norm_num_groups=4,
    sample_size=IMAGE_SIZE,
)

UNET_CONFIG = dict(
    sample_size=LATENT_SIZE,
    in_channels=LATENT_CHANNELS,
    out_channels=LATENT_CHANNELS,
    # Three levels, 8×8 → 4×4 → 2×2. At 2×2 every cell is one quadrant of the picture and sees
    # the zero padding on its own two sides, so "top left" has a place to attach to; with two
    # levels (8×8 → 4×4) the first teacher ignored position words entirely (20 %, chance).
    block_out_channels=(48, 64, 96),
    layers_per_block=1,
    down_block_types=("CrossAttnDownBlock2D",) * 3,
    up_block_types=("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=TEXT_HIDDEN,
    attention_head_dim=(6, 8, 12),  # diffusers' legacy name for the number of heads: 8 channels a head
    norm_num_groups=8,
)

# SD's noise schedule: scaled-linear β from 0.00085 to 0.012 over 1000 steps, epsilon prediction.
# The teacher trains on it (DDPM), the evaluation samples the teacher with it (DDIM), the LCM ships it.
NOISE_SCHEDULE = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
)

SCHEDULER_CONFIG = dict(  # LCM_Dreamshaper_v7's scheduler
    **NOISE_SCHEDULE,
    original_inference_steps=50,
    clip_sample=False,
    set_alpha_to_one=True,
    steps_offset=0,
    timestep_spacing="leading",
    timestep_scaling=10.0,
)


def build_tokenizer(folder: Path):
    """Write the word-level CLIP tokenizer files into ``folder`` and load them."""
    from transformers import CLIPTokenizer

    from lcm_desktop.core.clip_vocab import word_level_vocab, write_tokenizer_files

    vocab, merges = word_level_vocab(vocabulary())
    write_tokenizer_files(Path(folder), vocab, merges, max_length=MAX_LENGTH)
    return CLIPTokenizer.from_pretrained(str(folder))


def build_text_encoder(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    bos = tokenizer.convert_tokens_to_ids("<|startoftext|>")
    config = CLIPTextConfig(
        vocab_size=len(tokenizer.get_vocab()),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=2 * TEXT_HIDDEN,
        projection_dim=TEXT_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_LENGTH,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    return CLIPTextModel(config)


def build_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(**VAE_CONFIG)


def build_unet(time_cond_proj_dim: int | None = None):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**UNET_CONFIG, time_cond_proj_dim=time_cond_proj_dim)


def build_lcm_scheduler():
    from diffusers import LCMScheduler

    return LCMScheduler(**SCHEDULER_CONFIG)


def build_ddpm_scheduler():
    """The teacher's training noise schedule (SD's scaled-linear β, 1000 steps)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**NOISE_SCHEDULE, clip_sample=False)


def build_ddim_scheduler():
    """The teacher's sampler in the evaluation: DDIM on the same schedule, as SD 1.5 ships it."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(**NOISE_SCHEDULE, clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                         timestep_spacing="leading")


def tokenize(tokenizer, captions: list[str]):
    """(B, 77) input ids exactly as diffusers' pipelines make them (pad to max length, no mask)."""
    return tokenizer(
        captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
