from __future__ import annotations

import pytest

from lcm_desktop.core.errors import InvalidRequestError
from lcm_desktop.core.request import GenerationRequest


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("steps", 0, "from 1 to 50"),
        ("steps", 51, "from 1 to 50"),
        ("steps", 2.5, "whole number"),
        ("width", 513, "multiple of 8"),
        ("height", 56, "from 64 to 2048"),
        ("width", 4096, "from 64 to 2048"),
        ("batch_size", 9, "from 1 to 8"),
        ("guidance_scale", -1.0, "from 0 to 30"),
        ("guidance_scale", float("nan"), "a number"),
        ("seed", -1, "0 to 4294967295"),
        ("seed", 2**32, "0 to 4294967295"),
        ("prompt", None, "text"),
    ],
)
def test_bad_values_name_field_value_and_range(field, value, needle):
    kwargs = {"prompt": "a cat", field: value}
    with pytest.raises(InvalidRequestError) as info:
        GenerationRequest(**kwargs)
    message = str(info.value)
    assert f"`{field}`" in message and needle in message and repr(value) in message
    assert info.value.field == field


def test_defaults_resolve_and_explicit_values_win():
    request = GenerationRequest("a cat", width=128)
    assert not request.is_resolved
    resolved = request.resolved(width=512, height=768, guidance_scale=8.5)
    assert (resolved.width, resolved.height, resolved.guidance_scale) == (128, 768, 8.5)
    assert resolved.is_resolved and 0 <= resolved.seed < 2**32
    assert resolved.resolved(width=64, height=64, guidance_scale=1.0) == resolved


def test_batch_seeds_are_consecutive_and_wrap():
    request = GenerationRequest("x", seed=2**32 - 2, batch_size=3)
    assert request.seeds == [2**32 - 2, 2**32 - 1, 0]


def test_request_is_frozen():
    request = GenerationRequest("x")
    with pytest.raises(AttributeError):
        request.steps = 3  # type: ignore[misc]


def test_lora_weights_are_validated():
    from lcm_desktop.core.request import LoraWeight

    request = GenerationRequest("a cat", loras=[LoraWeight("papercut", 0.8), LoraWeight("ink", -1)])
    assert request.loras == (LoraWeight("papercut", 0.8), LoraWeight("ink", -1.0))
    for bad in (float("nan"), 4.5, True, "1"):
        with pytest.raises(InvalidRequestError, match="`loras` must be a weight from -4 to 4"):
            LoraWeight("papercut", bad)
    with pytest.raises(InvalidRequestError, match="each style once"):
        GenerationRequest("a cat", loras=(LoraWeight("a"), LoraWeight("a", 0.5)))
    with pytest.raises(InvalidRequestError, match="a style name"):
        LoraWeight(" ")
