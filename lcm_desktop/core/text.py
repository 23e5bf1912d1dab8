"""Text from files, shown on a terminal: control characters made visible, never obeyed.

A model's name, a LoRA's trigger words (``ss_tag_frequency``), a PNG's metadata and a file name come
from strangers.  Printed raw, ``\\x1b[2J`` clears the user's terminal, ``\\r`` or ``\\n`` forges a table
row or a second "error:" line, and a right-to-left override (U+202E) reverses what follows.  Every
front end that prints such text passes it through ``printable`` first (the CLI: its tables, notes and
its one error line).
"""

from __future__ import annotations

import unicodedata

_KEEP = frozenset("\n")


def printable(text: object, *, newlines: bool = False) -> str:
    """``text`` with control and format characters (Unicode Cc, Cf, Zl, Zp) as ``\\xNN``/``\\uNNNN`` escapes.

    ``newlines``: keep ``\\n`` (a multi-line report); otherwise it is escaped too, so the result is one line.
    """
    text = str(text)
    if text.isprintable():  # the common case: nothing to do
        return text
    out = []
    for char in text:
        if newlines and char in _KEEP:
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") and char != " ":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)
