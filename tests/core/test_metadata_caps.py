"""PNG text chunks we write are capped (issue 25 item 2): a PNG never carries a chunk its readers refuse."""

from __future__ import annotations

from PIL import Image

from lcm_desktop.core.metadata import JSON_KEY, MAX_CHUNK_BYTES, PARAMETERS_KEY, ImageParameters, save_png


def test_an_oversized_chunk_is_cut_or_left_out_and_the_png_still_opens(tmp_path):
    huge = ImageParameters(prompt="a red circle", steps=2, seed=1, extra={"Notes": "é" * MAX_CHUNK_BYTES})
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "x.png", huge)
    with Image.open(path) as image:  # Pillow refuses a text chunk over 1 MB: the PNG would not open at all
        text, data = image.info.get(PARAMETERS_KEY), image.info.get(JSON_KEY)
    assert text.startswith("a red circle") and text.endswith("…")
    assert len(text.encode("utf-8")) <= MAX_CHUNK_BYTES
    assert data is None  # JSON cannot be cut and still parse


def test_usual_chunks_are_written_whole(tmp_path):
    params = ImageParameters(prompt="p" * 20_000, negative_prompt="n" * 20_000, steps=2, seed=1)
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "y.png", params)
    with Image.open(path) as image:
        assert image.info[PARAMETERS_KEY] == params.to_text() and image.info[JSON_KEY] == params.to_json()
