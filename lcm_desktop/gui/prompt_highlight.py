"""Colours for AUTOMATIC1111 prompt syntax as it is typed: ``<lora:name:weight>`` tags, emphasis brackets
with their weights, and ``BREAK``.  Only looks; what the syntax means is ``core/prompt_syntax.py``."""

from __future__ import annotations

import re

from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat

_LORA = re.compile(r"<lora:[^>]*>")
_BRACKET = re.compile(r"(?<!\\)[()\[\]]")
_WEIGHT = re.compile(r":\s*-?\d+(?:\.\d*)?\s*(?=\))")  # the ":1.3" of "(word:1.3)"
_BREAK = re.compile(r"\bBREAK\b")


def _format(color: str, bold: bool = False) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(QColor(color))
    if bold:
        fmt.setFontWeight(QFont.Weight.Bold)
    return fmt


class PromptHighlighter(QSyntaxHighlighter):
    RULES = ((_BRACKET, _format("#c0661a", bold=True)), (_WEIGHT, _format("#c0661a")),
             (_BREAK, _format("#8a3fc0", bold=True)), (_LORA, _format("#13808a", bold=True)))

    def highlightBlock(self, text: str) -> None:
        for pattern, fmt in self.RULES:
            for match in pattern.finditer(text):
                self.setFormat(match.start(), match.end() - match.start(), fmt)
