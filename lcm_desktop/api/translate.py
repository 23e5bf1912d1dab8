"""AUTOMATIC1111's request fields ⇄ our ``GenerationRequest`` and result, in both directions (no HTTP here).

Every refusal is one ``InvalidRequestError`` naming the field as the client sent it (``cfg_scale``, not
``guidance_scale``), so the server answers it with a 422 that says which field and what is allowed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import replace
from typing import Any

from ..core.errors import InvalidRequestError
from ..core.mask import INPAINT_STRENGTH, Inpaint, InpaintArea
from ..core.metadata import png_bytes
from ..core.model_info import ModelInfo
from ..core.presets import SamplerPreset, default_steps, find_preset, resolve_sampler
from ..core.request import (
    DEFAULT_STRENGTH,
    MAX_BATCH,
    MAX_SEED,
    GenerationRequest,
    GenerationResult,
    fit_steps_to_strength,
)
from ..outputs import image_parameters
from .schemas import Img2ImgBody, Txt2ImgBody

# Our request's field names as A1111 calls them (the rest are the same).
A1111_FIELDS = {"guidance_scale": "cfg_scale", "strength": "denoising_strength", "init_image": "init_images",
                "loras": "prompt", "negative_prompt": "negative_prompt"}
MAX_IMAGE_BYTES = 24 * 1024 * 1024  # one decoded upload (the whole body is capped by the server too)
MAX_IMAGE_PIXELS = 4096 * 4096  # a starting picture larger than this is refused from its header
INPAINTING_FILLS = {0: "fill", 1: "original"}  # A1111's masked-content modes we accept (both start from the picture)
MAX_PROMPT_CHARS = 10_000  # ~130 chunks of 75 tokens at most: a prompt never costs unbounded encoder time
_DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,", re.IGNORECASE)


def to_request(body: Txt2ImgBody, info: ModelInfo) -> tuple[GenerationRequest, str]:
    """The request a txt2img or img2img body asks for on the model ``info`` describes, and a note ("" or why the
    steps were lowered for the strength, or why another sampler than the one asked for runs).
    Raises ``InvalidRequestError`` naming the A1111 field."""
    _refuse_unsupported(body)
    for name in ("prompt", "negative_prompt"):
        if len(getattr(body, name)) > MAX_PROMPT_CHARS:
            raise InvalidRequestError(name, f"{len(getattr(body, name))} characters", f"at most {MAX_PROMPT_CHARS}")
    if body.seed < -1:
        raise InvalidRequestError("seed", body.seed, f"-1 (random) or from 0 to {MAX_SEED}")
    for name in ("batch_size", "n_iter"):
        value = getattr(body, name)
        if not 1 <= value <= MAX_BATCH:
            raise InvalidRequestError(name, value, f"from 1 to {MAX_BATCH}")
    if body.batch_size * body.n_iter > MAX_BATCH:
        raise InvalidRequestError("n_iter", body.n_iter, f"at most {MAX_BATCH // body.batch_size} with batch_size "
                                  f"{body.batch_size} (at most {MAX_BATCH} images a request)")
    preset, notes = sampler_for(body, info)
    steps = default_steps(info, preset) if body.steps is None else body.steps
    strength = 1.0
    width = info.defaults.width if body.width is None else body.width
    height = info.defaults.height if body.height is None else body.height
    masked = isinstance(body, Img2ImgBody) and body.mask is not None
    if isinstance(body, Img2ImgBody):
        default = INPAINT_STRENGTH if masked else DEFAULT_STRENGTH
        strength = default if body.denoising_strength is None else body.denoising_strength
    with _renamed():
        request = GenerationRequest(
            prompt=body.prompt, negative_prompt=body.negative_prompt, steps=steps, guidance_scale=body.cfg_scale,
            width=width, height=height, seed=None if body.seed == -1 else body.seed,
            batch_size=body.batch_size * body.n_iter,
            init_image=_placeholder() if isinstance(body, Img2ImgBody) else None, strength=strength,
            sampler=preset.name, eta=body.eta if preset.takes_eta else None)
        request.styles  # noqa: B018 — a bad <lora:…> tag in the prompt: 422 now, not a failed job later
        request = resolve_sampler(request, info.preset, info.name)  # guidance a guidance-free preset refuses: 422
        if isinstance(body, Img2ImgBody):
            steps, note = fit_steps_to_strength(steps, strength, info.original_steps, preset.name)
            notes.append(note)
            inpaint = _inpaint(body) if masked else None
            # "only masked" keeps the picture's own size (core.mask): decode it unscaled, as the CLI opens a file
            size = (0, 0) if inpaint is not None and inpaint.area is InpaintArea.MASKED else (width, height)
            if inpaint is not None:
                inpaint = replace(inpaint, mask=_mask_picture(body, size))
            init_image = decode_picture(_one(body.init_images), "init_images", *size)
            request = replace(request, steps=steps, init_image=init_image, inpaint=inpaint)
    return request, "; ".join(n for n in notes if n)


def sampler_for(body: Txt2ImgBody, info: ModelInfo) -> tuple[SamplerPreset, list[str]]:
    """A1111's ``sampler_name`` (else ``sampler_index``) → the preset it names when this model can run it (an A1111
    label such as "TCD", or our name such as "hyper-sd"); any other name is not an error — A1111 clients send
    "Euler a" by default — the model's own preset runs and the note (and the answer's ``info``) says so."""
    name = body.sampler_name or body.sampler_index
    if not name:
        return info.preset, []
    preset = find_preset(name)
    if preset is not None and preset in info.presets:
        return preset, []
    return info.preset, [f"sampler {name!r} is not one {info.name} runs; it ran {info.preset.label} "
                         f"({info.preset.name})"]


def _inpaint(body: Img2ImgBody) -> Inpaint:
    """img2img's mask fields → ``core.mask.Inpaint`` (the picture is decoded after the fields pass)."""
    if body.inpainting_fill not in INPAINTING_FILLS:
        raise InvalidRequestError("inpainting_fill", body.inpainting_fill, "0 (fill) or 1 (original): the masked "
                                  "area starts from the picture; latent noise (2) and latent nothing (3) are not "
                                  "supported")
    if body.inpainting_mask_invert not in (0, 1):
        raise InvalidRequestError("inpainting_mask_invert", body.inpainting_mask_invert, "0 or 1 (invert the mask)")
    area = InpaintArea.MASKED if body.inpaint_full_res else InpaintArea.WHOLE
    blur = 4 if body.mask_blur is None else body.mask_blur
    with _mask_fields():
        return Inpaint(mask=_placeholder(), blur=blur, area=area, padding=body.inpaint_full_res_padding)


def _mask_picture(body: Img2ImgBody, size: tuple[int, int]) -> Any:
    """The ``mask`` upload as a picture (decoded as ``init_images`` is, same caps), inverted when asked."""
    from PIL import ImageOps

    from ..core.mask import load_mask

    mask = decode_picture(body.mask, "mask", *size)
    if body.inpainting_mask_invert:  # flattened by the mask rule first (transparency on white), then inverted
        mask = ImageOps.invert(load_mask(mask, mask.width, mask.height))
    return mask


class _mask_fields:
    """``core.mask``'s field names → A1111's (``mask_blur`` is the same)."""

    NAMES = {"inpaint_padding": "inpaint_full_res_padding", "inpaint_area": "inpaint_full_res"}

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if isinstance(exc, InvalidRequestError) and exc.field in self.NAMES:
            raise InvalidRequestError(self.NAMES[exc.field], exc.value, exc.allowed) from exc
        return False


def _placeholder() -> Any:
    """A stand-in starting picture while the fields are checked (the upload is decoded once they pass)."""
    from PIL import Image

    return Image.new("RGB", (1, 1))


def _one(images: list[str]) -> str:
    if len(images) != 1:
        raise InvalidRequestError("init_images", f"{len(images)} pictures", "a list of one base64 picture")
    return images[0]


def _refuse_unsupported(body: Txt2ImgBody) -> None:
    """Fields whose non-default values would change the picture in ways this app cannot (yet): a 422 each."""
    checks = [("enable_hr", body.enable_hr, "false (hires fix is not supported)"),
              ("restore_faces", body.restore_faces, "false (face restoration is not supported)"),
              ("tiling", body.tiling, "false (tiling is not supported)"),
              ("styles", body.styles, "empty (A1111 prompt styles do not exist here; write <lora:name:weight> in the "
               "prompt for a style)"),
              ("script_name", body.script_name, "null (scripts are not supported)"),
              ("alwayson_scripts", any(_script_active(v) for v in body.alwayson_scripts.values()),
               "empty (scripts and extensions such as ControlNet are not supported)")]
    for name, value, allowed in checks:
        if value:
            raise InvalidRequestError(name, "a non-empty value" if name in ("alwayson_scripts",) else value, allowed)


def _script_active(value: Any) -> bool:
    return bool(value.get("args")) if isinstance(value, dict) else bool(value)


class _renamed:
    """Re-raise our request's ``InvalidRequestError`` with A1111's name for the field."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if isinstance(exc, InvalidRequestError) and exc.field in A1111_FIELDS and type(exc) is InvalidRequestError:
            raise InvalidRequestError(A1111_FIELDS[exc.field], exc.value, exc.allowed) from exc
        return False


def decode_base64(text: Any, field: str) -> bytes:
    """A base64 string (optionally a ``data:image/…;base64,`` URL) → bytes; anything else is a 422 naming ``field``."""
    if not isinstance(text, str) or not text:
        raise InvalidRequestError(field, type(text).__name__, "a base64-encoded picture")
    payload = _DATA_URL.sub("", text.strip(), count=1)
    if len(payload) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise InvalidRequestError(field, f"{len(payload)} characters", f"at most {MAX_IMAGE_BYTES // 2**20} MiB "
                                  "of picture")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(field, payload[:16] + "…", "valid base64 (A-Z, a-z, 0-9, +, / and = padding)") \
            from None


def decode_picture(text: Any, field: str, width: int = 0, height: int = 0) -> Any:
    """A base64 picture → a PIL image (decoded as a file would be: ``core.init_image``), or a 422 naming ``field``."""
    from ..core.init_image import open_image_data

    return open_image_data(decode_base64(text, field), width, height, field=field, max_pixels=MAX_IMAGE_PIXELS)


def encode_png(image: Any, parameters: Any = None) -> str:
    """A PIL image → base64 PNG text (with our parameter chunks when given)."""
    if parameters is not None:
        data = png_bytes(image, parameters)
    else:
        import io

        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        data = buffer.getvalue()
    return base64.b64encode(data).decode("ascii")


def image_response(result: GenerationResult, body: Txt2ImgBody, *, model: str, model_hash: str | None) -> dict:
    """A1111's answer: base64 PNGs carrying our ``parameters`` text, the request echoed, and ``info`` as JSON text."""
    req = result.request
    params = [image_parameters(result, seed, model, model_hash) for seed in result.seeds]
    images = [encode_png(image, p) for image, p in zip(result.images, params)] if body.send_images else []
    count = len(result.seeds)
    extra = dict(params[0].extra) if params else {}
    info = {
        "prompt": req.prompt, "all_prompts": [req.prompt] * count,
        "negative_prompt": req.negative_prompt, "all_negative_prompts": [req.negative_prompt] * count,
        "seed": result.seeds[0] if result.seeds else req.seed, "all_seeds": list(result.seeds),
        "subseed": -1, "all_subseeds": [-1] * count, "subseed_strength": 0,
        "width": req.width, "height": req.height, "sampler_name": _label(req.sampler), "eta": req.eta,
        "cfg_scale": req.guidance_scale,
        "steps": req.steps, "batch_size": body.batch_size, "restore_faces": False, "face_restoration_model": None,
        "sd_model_name": model, "sd_model_hash": model_hash, "sd_vae_name": None, "sd_vae_hash": None,
        "seed_resize_from_w": -1, "seed_resize_from_h": -1,
        "denoising_strength": req.strength if req.is_img2img else None,
        "extra_generation_params": extra, "index_of_first_image": 0,
        "infotexts": [p.to_text() for p in params], "styles": [],
        "job_timestamp": time.strftime("%Y%m%d%H%M%S"), "clip_skip": 1, "is_using_inpainting_conditioning": False,
        "version": "lcm-desktop",
    }
    parameters = body.model_dump()
    if isinstance(body, Img2ImgBody) and not body.include_init_images:
        parameters["init_images"], parameters["mask"] = None, None
    return {"images": images, "parameters": parameters, "info": json.dumps(info, ensure_ascii=False)}


def sampler_items(info: ModelInfo) -> list[dict]:
    """``/samplers``: the presets the current model runs (its own first), one per A1111 label (A1111's shape:
    ``name`` is the label a client sends as ``sampler_name``; ``aliases`` our preset names and their aliases)."""
    from ..core.presets import ALIASES

    items: dict[str, list[str]] = {}
    for preset in info.presets:
        names = items.setdefault(preset.label, [])
        names += [preset.name] + [alias for alias, target in ALIASES.items() if target == preset.name]
    return [{"name": label, "aliases": names, "options": {}} for label, names in items.items()]


def _label(sampler: str | None) -> str:
    preset = find_preset(sampler)
    return preset.label if preset is not None else "LCM"


def png_info(text: Any) -> dict:
    """``/png-info``: the parameters a base64 PNG carries, as A1111 answers (``info`` text and its ``items``)."""
    from ..core.init_image import open_image_data
    from ..core.metadata import JSON_KEY, PARAMETERS_KEY, ImageParameters

    image = open_image_data(decode_base64(text, "image"), field="image", max_pixels=MAX_IMAGE_PIXELS)
    chunks = {k: v for k, v in image.info.items() if isinstance(k, str) and isinstance(v, str)}
    info = chunks.get(PARAMETERS_KEY, "")
    parameters: dict[str, Any] = {}
    if info:
        parsed = ImageParameters.parse(info)
        parameters = {"Prompt": parsed.prompt, "Negative prompt": parsed.negative_prompt, "Steps": parsed.steps,
                      "Sampler": parsed.sampler, "CFG scale": parsed.guidance_scale, "Seed": parsed.seed,
                      "Size-1": parsed.width, "Size-2": parsed.height, "Model hash": parsed.model_hash,
                      "Model": parsed.model, **parsed.extra}
        if parsed.strength is not None:
            parameters["Denoising strength"] = parsed.strength
        parameters = {k: v for k, v in parameters.items() if v not in (None, "")}
    items = {k: v for k, v in chunks.items() if k not in (PARAMETERS_KEY, JSON_KEY)}
    return {"info": info, "items": items, "parameters": parameters}
