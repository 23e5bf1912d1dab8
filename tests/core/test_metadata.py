from __future__ import annotations

from PIL import Image

from lcm_desktop.core.metadata import ImageParameters, read_png_parameters, save_png


def test_round_trip_through_a_png(tmp_path):
    params = ImageParameters(
        prompt="a red circle, top left", negative_prompt="blurry, ugly", steps=4, guidance_scale=8.5, seed=123,
        width=512, height=768, model="lcm-demo", model_hash="0123456789",
    )
    path = save_png(Image.new("RGB", (8, 8), "red"), tmp_path / "x.png", params)
    assert read_png_parameters(path) == params
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_text_is_a1111_format():
    text = ImageParameters(
        prompt="cat", steps=4, guidance_scale=8.0, seed=1, width=512, height=512, model="m"
    ).to_text()
    assert text == "cat\nSteps: 4, Sampler: LCM, CFG scale: 8, Seed: 1, Size: 512x512, Model: m"


def test_parses_automatic1111_output_with_quoted_values_and_multiline_prompts():
    text = (
        "masterpiece, a castle\non a hill\nNegative prompt: lowres,\nbad hands\n"
        'Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 3846523, Size: 512x768, '
        'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "a: 1b2c, b: 3d4e", Version: v1.6.0'
    )
    params = ImageParameters.parse(text)
    assert params.prompt == "masterpiece, a castle\non a hill"
    assert params.negative_prompt == "lowres,\nbad hands"
    assert (params.steps, params.sampler, params.guidance_scale, params.seed) == (20, "DPM++ 2M Karras", 7.0, 3846523)
    assert (params.width, params.height, params.model_hash) == (512, 768, "6ce0161689")
    assert params.extra == {"Lora hashes": "a: 1b2c, b: 3d4e", "Version": "v1.6.0"}


def test_tolerates_missing_fields():
    assert ImageParameters.parse("just a prompt") == ImageParameters(prompt="just a prompt", sampler=None)
    params = ImageParameters.parse("p\nSteps: 4, Seed: x, Size: big")
    assert (params.steps, params.seed, params.width) == (4, None, None)


def test_png_without_parameters(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    assert read_png_parameters(tmp_path / "plain.png") is None


def test_loras_round_trip_and_a1111_lora_hashes(tmp_path):
    from PIL import Image

    from lcm_desktop.core.metadata import LORA_HASHES, lora_hashes_text, read_png_parameters, save_png
    from lcm_desktop.core.request import LoraWeight

    hashes = lora_hashes_text([("paper:cut,s", "1a2b3c4d5e6f"), ("ink", "abcdef012345")])
    assert hashes == "papercuts: 1a2b3c4d5e6f, ink: abcdef012345"  # A1111 drops ':' and ',' from names
    params = ImageParameters(prompt="a cat <lora:ink:0.5>", steps=4, seed=1, width=64, height=64,
                             extra={LORA_HASHES: hashes}, loras=(LoraWeight("papercut", 0.8), LoraWeight("ink", 0.5)))
    text = params.to_text()
    assert 'Lora hashes: "papercuts: 1a2b3c4d5e6f, ink: abcdef012345"' in text.splitlines()[-1]
    foreign = ImageParameters.parse(text)  # as A1111's PNG Info or another tool reads the text
    assert foreign.lora_hashes == {"papercuts": "1a2b3c4d5e6f", "ink": "abcdef012345"}
    assert foreign.style_names == ("papercuts", "ink") and foreign.loras == ()
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "a.png", params)
    back = read_png_parameters(path)
    assert back.loras == (LoraWeight("papercut", 0.8), LoraWeight("ink", 0.5))
    assert back.style_names == ("papercut", "ink")


def test_bad_loras_in_the_json_chunk_fall_back_to_the_text():
    import json

    good = json.loads(ImageParameters(prompt="p", steps=2).to_json())
    for bad in ([["x", 99]], [["x"]], "x", [[1, 1]]):
        assert ImageParameters.from_json(json.dumps({**good, "loras": bad})) is None
    assert ImageParameters.from_json(json.dumps(good)).loras == ()
