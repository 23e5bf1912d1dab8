"""Style LoRAs through the model manager and `generate --lora`: import, list, delete, metadata, restore."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_models
from cli_output import error_line

from lcm_desktop.cli import main
from lcm_desktop.core.metadata import read_png_parameters
from lcm_desktop.core.request import LoraWeight
from lcm_desktop.models.styles import StyleStore, is_lora_file

pytest.importorskip("peft", reason="diffusers' LoRA loading needs peft")


@pytest.fixture(scope="module")
def kohya_style(tiny_lcm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("downloads")
    made = tiny_models.make_tiny_style(tiny_lcm, folder / "made.safetensors", seed=1)
    return tiny_models.to_kohya(made, folder / "papercut.safetensors")


def _imported():
    """The styles imported into this test's app folder (the built-in ones are listed too, after them)."""
    return [s for s in StyleStore().styles() if not s.builtin]


def test_import_list_and_delete_a_style(kohya_style, tmp_path, capsys):
    assert is_lora_file(kohya_style) and not is_lora_file(kohya_style.parent)
    assert main(["models", "import", str(kohya_style)]) == 0
    out = capsys.readouterr().out
    assert "imported style papercut (SD1.5-class," in out and "trigger words: papercut, paper art, red" in out
    installed = _imported()
    assert [s.name for s in installed] == ["papercut"]
    assert installed[0].path.read_bytes() == kohya_style.read_bytes()  # an exact copy in <data>/styles/
    assert not [p for p in installed[0].path.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    assert main(["models", "styles"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[:2] == ["papercut", "SD1.5-class"] and "papercut, paper art, red" in " ".join(row)
    assert main(["models", "list"]) == 0
    assert "papercut" in capsys.readouterr().out
    assert main(["models", "import", str(kohya_style)]) == 2  # the name is taken
    assert "a new style name" in error_line(capsys.readouterr().err)
    assert main(["models", "rm", "papercut"]) == 0
    assert _imported() == [] and "deleted papercut" in capsys.readouterr().out


def test_import_refuses_loha_and_pickles_in_one_line(tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    loha = tmp_path / "loha.safetensors"
    save_file({"lora_unet_mid_block_attentions_0_proj_in.hada_w1_a": torch.zeros(2, 2)}, loha)
    assert main(["models", "import", str(loha)]) == 2
    assert "loha.safetensors is a LoHa (LyCORIS) file, which diffusers cannot load" in error_line(
        capsys.readouterr().err)
    assert _imported() == []


def test_generate_with_a_style_records_and_restores_it(tiny_lcm, kohya_style, tmp_path, capsys):
    StyleStore().import_file(kohya_style, name="paper cut")
    args = ["generate", "a red circle", "--model", str(tiny_lcm), "--seed", "3", "--steps", "2", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "plain.png")]) == 0
    assert main([*args, "--lora", "paper cut:0.8", "--out", str(tmp_path / "styled.png")]) == 0, \
        capsys.readouterr().err
    plain, styled = (np.asarray(__import__("PIL.Image").Image.open(tmp_path / f"{n}.png"), np.int16)
                     for n in ("plain", "styled"))
    assert np.abs(plain - styled).mean() > 2
    params = read_png_parameters(tmp_path / "styled.png")
    assert params.loras == (LoraWeight("paper cut", 0.8),)
    from lcm_desktop.core.lora_file import lora_hash

    assert params.lora_hashes == {"paper cut": lora_hash(kohya_style)}
    assert StyleStore().missing(params.style_names) == []
    assert StyleStore().missing(["paper cut", "gone"]) == ["gone"]  # what the app reports when a PNG is dropped
    assert main([*args, "--lora", "papercutt", "--out", str(tmp_path / "x.png")]) == 2
    assert "No style named 'papercutt'; did you mean paper cut?" in error_line(capsys.readouterr().err)
    assert main([*args, "--lora", "paper cut:lots", "--out", str(tmp_path / "x.png")]) == 2
    assert "`--lora` must be NAME or NAME:WEIGHT" in error_line(capsys.readouterr().err)


def test_a_lora_tag_in_the_prompt_works_like_lora_and_an_unknown_one_is_one_line(tiny_lcm, kohya_style, tmp_path,
                                                                                 capsys):
    StyleStore().import_file(kohya_style, name="paper cut")
    args = ["generate", "--model", str(tiny_lcm), "--seed", "3", "--steps", "2", "--quiet"]
    assert main([*args, "a red circle", "--lora", "paper cut:0.8", "--out", str(tmp_path / "flag.png")]) == 0
    assert main([*args, "a red circle <lora:paper cut:0.8>", "--out", str(tmp_path / "tag.png")]) == 0
    flag, tag = (np.asarray(__import__("PIL.Image").Image.open(tmp_path / f"{n}.png"), np.int16)
                 for n in ("flag", "tag"))
    assert (flag == tag).all()
    params = read_png_parameters(tmp_path / "tag.png")
    assert params.prompt == "a red circle <lora:paper cut:0.8>" and "paper cut" in params.lora_hashes
    assert main([*args, "a red circle <lora:papercutt:1>", "--out", str(tmp_path / "x.png")]) == 2
    assert "No style named 'papercutt'; did you mean paper cut?" in error_line(capsys.readouterr().err)


def test_built_in_styles_are_listed_and_used_but_not_deleted(kohya_style, tmp_path):
    import shutil

    from lcm_desktop.core.errors import InvalidRequestError
    from lcm_desktop.core.paths import AppPaths

    shipped = tmp_path / "resources-styles"
    shipped.mkdir()
    shutil.copy(kohya_style, shipped / "striped.safetensors")
    store = StyleStore(AppPaths.default(), builtin=shipped)
    (style,) = store.styles()
    assert (style.name, style.builtin) == ("striped", True)
    assert store.path_of("striped") == shipped / "striped.safetensors"
    assert store.missing(["striped", "gone"]) == ["gone"]
    with pytest.raises(InvalidRequestError, match="built-in ones come with the app"):
        store.delete("striped")
    assert (shipped / "striped.safetensors").is_file()
    store.import_file(kohya_style, name="papercut")
    assert [(s.name, s.builtin) for s in store.styles()] == [("papercut", False), ("striped", True)]


def test_a_file_placed_by_hand_under_a_built_in_name_never_hides_it(kohya_style, tmp_path):
    import shutil

    from lcm_desktop.core.paths import AppPaths

    shipped = tmp_path / "resources-styles"
    shipped.mkdir()
    shutil.copy(kohya_style, shipped / "striped.safetensors")
    store = StyleStore(AppPaths.default(), builtin=shipped)
    store.folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(kohya_style, store.folder / "Striped.safetensors")  # not through import: by hand
    listed = {(s.name, s.builtin, not s.problem) for s in store.styles()}
    assert listed == {("Striped", False, False), ("striped", True, True)}  # both shown; the copy says why
    assert store.path_of("striped") == shipped / "striped.safetensors"
    assert store.path_of("Striped") == shipped / "striped.safetensors"
