"""One name rule for styles and models (issue 25 item 6, review B-3), checked where each front end asks."""

from __future__ import annotations

import pytest

from lcm_desktop.core.errors import InvalidRequestError
from lcm_desktop.core.names import check_model_name, check_style_name, is_style_name
from lcm_desktop.models.styles import StyleStore
from lcm_desktop.training.style_file import check_style_name as training_check


@pytest.mark.parametrize("name", ["-x", "_x", ".x", " x", "x ", "a/b", "..", "x" * 65, "", "a\tb", "a\nb"])
def test_names_the_store_cannot_serve_are_refused_by_training_too(name, tmp_path):
    assert not is_style_name(name)
    with pytest.raises(InvalidRequestError, match="starting with a letter or digit"):
        training_check(name)
    store = StyleStore.__new__(StyleStore)  # _file only needs the folders
    store.paths, store.builtin = None, tmp_path
    assert store._file(name) is None


@pytest.mark.parametrize("name", ["ink", "Ink style 2", "a.b-c_d", "x" * 64])
def test_good_names_pass_everywhere(name):
    assert is_style_name(name) and check_style_name(name) == name == training_check(name)


def test_a_built_in_style_name_is_refused_ignoring_case():
    with pytest.raises(InvalidRequestError, match="built-in style 'huge'"):
        training_check("HUGE")  # resources/styles/huge.safetensors would be hidden by it
    with pytest.raises(InvalidRequestError, match="catalog ids .*'lcm-demo'"):
        check_model_name("LCM-Demo", builtin=["lcm-demo"])


def test_an_import_named_like_a_catalog_model_is_refused_ignoring_case():
    from lcm_desktop.models.catalog import load_catalog
    from lcm_desktop.models.importer import _target

    catalog = load_catalog()
    builtin = next(entry.id for entry in catalog if entry.source == "builtin")
    with pytest.raises(InvalidRequestError, match=f"taken for '{builtin}'"):
        _target(builtin.upper(), catalog, None)  # None: the autouse fixture's tmp folders
