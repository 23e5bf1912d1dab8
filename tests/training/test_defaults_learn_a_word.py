"""The plain ``train-style FOLDER --name N`` teaches the built-in model a new word (issue 25 item 8).

276 pictures (``convert.demo_model.word_eval``): red shapes captioned with "wug", a word the built-in tokenizer
spells letter by letter, and 96 ordinary scenes; no flags.  Of the 6 held-out captions (shape and background
pairs never rendered with the word) at least 5 must come out red (docs/STYLES.md: 6 of 6 measured; 0 of 6 before
training, 2 of 6 with the old defaults).  About 6 minutes of training on one CPU thread: ``slow``.
"""

from __future__ import annotations

import pytest

from lcm_desktop.cli import main
from lcm_desktop.core.paths import AppPaths


@pytest.mark.slow
@pytest.mark.timeout(3600)  # ~6 minutes on a quiet core; 12 on the shared 2-core box
def test_the_plain_command_teaches_the_built_in_model_a_new_word(tmp_path, capsys):
    from convert.demo_model import word_eval

    folder = tmp_path / "wug"
    assert word_eval.write_pictures(folder) == 276
    assert main(["train-style", str(folder), "--name", "wug"]) == 0
    style = AppPaths.default().data / "styles" / "wug.safetensors"
    assert capsys.readouterr().out.strip() == str(style)
    readings = word_eval.evaluate(style)
    assert word_eval.rate(readings) >= 5, readings
