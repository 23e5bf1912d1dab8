"""Marked sections of docs/DEMO_MODEL.md that other stages own.

``eval`` rewrites the whole card from its template; a stage that adds its own section (``img2img``)
wraps it in ``<!-- section:NAME -->`` … ``<!-- /section:NAME -->`` and replaces only that block, and
``card.write_card`` carries every marked block of the old card over into the new one.
"""

from __future__ import annotations

import re

_BLOCK = re.compile(r"<!-- section:(?P<name>[\w-]+) -->\n.*?<!-- /section:(?P=name) -->\n", re.S)


def marked(name: str, body: str) -> str:
    """``body`` wrapped in the markers of section ``name`` (a trailing newline added if missing)."""
    return f"<!-- section:{name} -->\n{body.rstrip(chr(10))}\n<!-- /section:{name} -->\n"


def sections(text: str) -> dict[str, str]:
    """Every marked block of ``text`` (markers included) by its name, in order."""
    return {m["name"]: m[0] for m in _BLOCK.finditer(text)}


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with section ``name`` replaced by ``body``, or appended after a blank line if it has none."""
    block = marked(name, body)
    if name in sections(text):
        return _BLOCK.sub(lambda m: block if m["name"] == name else m[0], text)
    return text.rstrip("\n") + "\n\n" + block


def keep_sections(new: str, old: str) -> str:
    """``new`` with every marked section of ``old`` that ``new`` lacks appended, in ``old``'s order."""
    for name, block in sections(old).items():
        if name not in sections(new):
            new = new.rstrip("\n") + "\n\n" + block
    return new
