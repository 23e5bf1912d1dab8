"""The catalog's inpainting UNets pair with the LCM-LoRAs of their family, with their licences."""

from __future__ import annotations

from lcm_desktop.models.catalog import load_catalog


def test_inpainting_bases_pair_with_the_lcm_loras():
    catalog = load_catalog()
    for lora_id, base_id, family, repo, licence in (
        ("lcm-lora-sdv1-5-inpainting", "sd15-inpainting", "sd", "stable-diffusion-v1-5/stable-diffusion-inpainting",
         "creativeml-openrail-m"),
        ("lcm-lora-sdxl-inpainting", "sdxl-inpainting", "sdxl", "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
         "openrail++"),
    ):
        lora, base = catalog.get(lora_id), catalog.get(base_id)
        assert (lora.kind, lora.layout, lora.requires, lora.family) == ("lcm-lora", "lora", base_id, family)
        plain = catalog.get(lora_id.removesuffix("-inpainting"))
        assert lora.repo_id == plain.repo_id and lora.licence == plain.licence == "openrail++"  # the same LoRA file
        assert (base.kind, base.family, base.repo_id, base.licence) == ("base", family, repo, licence)
        assert "9 input channels" in base.description and base.variant == "fp16"
