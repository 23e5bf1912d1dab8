"""The JSON bodies of the local API, with AUTOMATIC1111's field names and shapes (its ``modules/api/models.py``).

Clients written for A1111 send many fields we have no use for (hires fix, face restoration, scripts); they are
accepted when they ask for nothing (their defaults) and refused by name (422) when they would change the picture
and we cannot honour them.  ``None`` means "the model's default" (steps, cfg_scale, size, strength), which is
what an LCM wants, rather than A1111's 20 steps at 512×512.  Unknown fields are accepted and ignored, as A1111
does, so a newer client keeps working.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class Txt2ImgBody(_Body):
    prompt: str = ""
    negative_prompt: str = ""
    styles: list[str] | None = Field(None, description="A1111 prompt styles: none exist here (our styles are "
                                     "LoRAs: `<lora:name:weight>` in the prompt)")
    seed: int = Field(-1, description="-1: random")
    subseed: int = -1
    subseed_strength: float = 0.0
    sampler_name: str | None = Field(None, description="a sampler the model runs (/samplers: \"LCM\", \"TCD\", …); "
                                     "any other (\"Euler a\") runs the model's own, and `info` says which ran")
    sampler_index: str | None = Field(None, description="the same, when sampler_name is left out")
    eta: float | None = Field(None, description="TCD samplers' eta (gamma), 0 … 1; ignored by samplers without eta")
    scheduler: str | None = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int | None = Field(None, description="denoising steps (default: the model's)")
    cfg_scale: float | None = Field(None, description="guidance scale (default: the model's)")
    width: int | None = Field(None, description="pixels, a multiple of 8 (default: the model's native size)")
    height: int | None = None
    restore_faces: bool | None = None
    tiling: bool | None = None
    enable_hr: bool = False
    override_settings: dict[str, Any] | None = Field(None, description="only sd_model_checkpoint is honoured")
    override_settings_restore_afterwards: bool = True
    script_name: str | None = None
    script_args: list[Any] = []
    alwayson_scripts: dict[str, Any] = {}
    send_images: bool = True
    save_images: bool = Field(False, description="ignored: every image is saved and listed in the history")


class Img2ImgBody(Txt2ImgBody):
    init_images: list[str] = Field(..., description="one base64 picture (a data: URL prefix is accepted)")
    denoising_strength: float | None = Field(None, description="0 < S <= 1 (default: 0.6)")
    resize_mode: int = Field(0, description="accepted; the picture is always scaled to cover the size and "
                             "centre-cropped")
    mask: str | None = Field(None, description="inpainting: a base64 picture, white = repaint, black = keep "
                             "(default denoising_strength with a mask: 1)")
    mask_blur: int | None = Field(None, description="px, 0 … 64 (default 4)")
    inpainting_fill: int = Field(0, description="0 (fill) or 1 (original): both start from the picture; "
                                 "2 and 3 (latent noise/nothing) are refused (422)")
    inpaint_full_res: bool | int = Field(True, description="true (A1111's default): only a box around the mask is "
                                         "generated at the request's size and pasted back; false: the whole picture")
    inpaint_full_res_padding: int = Field(0, description="px around the mask's box, 0 … 256 (A1111's API default 0)")
    inpainting_mask_invert: int = Field(0, description="1: repaint where the mask is black")
    initial_noise_multiplier: float | None = None
    image_cfg_scale: float | None = None
    include_init_images: bool = False


class ImageResponse(BaseModel):
    images: list[str] = Field(description="base64 PNGs carrying the `parameters` text chunk")
    parameters: dict[str, Any]
    info: str = Field(description="JSON text: seed, all_seeds, prompt, … as A1111 writes it")


class ProgressState(BaseModel):
    skipped: bool = False
    interrupted: bool = False
    stopping_generation: bool = False
    job: str = ""
    job_count: int = 0
    job_timestamp: str = "0"
    job_no: int = 0
    sampling_step: int = 0
    sampling_steps: int = 0


class ProgressResponse(BaseModel):
    progress: float
    eta_relative: float
    state: ProgressState
    current_image: str | None = Field(None, description="the running job's latest step preview (base64 PNG)")
    textinfo: str | None = None


class SamplerItem(BaseModel):
    name: str
    aliases: list[str]
    options: dict[str, str]


class SDModelItem(BaseModel):
    title: str
    model_name: str
    hash: str | None = None
    sha256: str | None = None
    filename: str = Field(description="the model's name (no local paths are shown)")
    config: str | None = None


class LoraItem(BaseModel):
    name: str
    alias: str
    path: str = Field(description="the style's file name (no local paths are shown)")
    metadata: dict[str, Any] = {}


class PngInfoBody(_Body):
    image: str = Field(description="a base64 PNG")


class PngInfoResponse(BaseModel):
    info: str
    items: dict[str, Any]
    parameters: dict[str, Any]
