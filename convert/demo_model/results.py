"""What the evaluation measures, keyed by configuration: ``Config(kind, steps, guidance)`` → scores.

``evaluate`` fills the rows and ``card`` renders them; both find a row by its configuration,
never by the text of its label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    CEILING = "ceiling"  # the analyzer on VAE round trips of the true pictures
    LCM = "lcm"
    TEACHER = "teacher"  # DDIM with classifier-free guidance


@dataclass(frozen=True)
class Config:
    """One evaluated configuration; the ceiling has no steps or guidance."""

    kind: Kind
    steps: int | None = None
    guidance: float | None = None

    @property
    def label(self) -> str:
        if self.kind is Kind.CEILING:
            return "VAE reconstruction of the true picture (ceiling)"
        if self.kind is Kind.LCM:
            return f"LCM, {self.steps} step{'s' if self.steps > 1 else ''}, guidance {self.guidance:g}"
        return f"Teacher DDIM, {self.steps} steps, CFG {self.guidance:g}"


CEILING = Config(Kind.CEILING)

Rows = dict[Config, dict]


def find(rows: Rows, kind: Kind, steps: int | None = None) -> dict | None:
    """The first row of ``kind`` (at ``steps`` if given), else None."""
    return next((r for c, r in rows.items() if c.kind is kind and (steps is None or c.steps == steps)), None)


def to_json(result: dict) -> str:
    """``result`` ({"rows": Rows, "sweep": Rows, ...}) as JSON: each row a list entry with its configuration."""

    def rows(table: Rows) -> list[dict]:
        return [{"kind": c.kind.value, "steps": c.steps, "guidance": c.guidance, "label": c.label, **scores}
                for c, scores in table.items()]

    return json.dumps({**result, "rows": rows(result["rows"]), "sweep": rows(result["sweep"])}, indent=2)


def from_json(text: str) -> dict:
    """The inverse of :func:`to_json`."""

    def rows(entries: list[dict]) -> Rows:
        out: Rows = {}
        for entry in entries:
            entry = dict(entry)
            config = Config(Kind(entry.pop("kind")), entry.pop("steps"), entry.pop("guidance"))
            entry.pop("label")
            out[config] = entry
        return out

    data = json.loads(text)
    return {**data, "rows": rows(data["rows"]), "sweep": rows(data["sweep"])}
