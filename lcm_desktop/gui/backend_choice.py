"""The backend combo box: renders ``engine.backends`` — which backends exist, which run here, which fits a model."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox

from ..core.model_info import ModelInfo, ModelKind
from ..engine.backends import CHOICES, COREML_PREFERENCE, TORCH_PREFERENCE, BackendStatus, choice


def fill_backends(combo: QComboBox, statuses: list[BackendStatus], saved: str = "") -> None:
    """The app's backends, those this machine lacks disabled with the reason as tooltip; keeps the current
    (or ``saved``) choice if it runs here, else the preferred PyTorch one.  Emits no change signal."""
    current = combo.currentData() or saved
    by_key = {s.choice.key: s for s in statuses}
    combo.blockSignals(True)
    combo.clear()
    model = combo.model()
    for c in (c for c in CHOICES if c.in_app):
        status = by_key.get(c.key)
        combo.addItem(c.label, c.key)
        item = model.item(combo.count() - 1)
        item.setEnabled(status is not None and status.available)
        if status is None:
            item.setToolTip("Checking whether this machine can run it…")
        elif not status.available:
            item.setToolTip(status.why)
    runnable = [key for key, s in by_key.items() if s.available and choice(key).in_app]
    key = current if current in runnable else next((k for k in TORCH_PREFERENCE if k in runnable), "cpu")
    combo.setCurrentIndex(max(combo.findData(key), 0))
    combo.blockSignals(False)


def prefer_backend(combo: QComboBox, kind: ModelKind) -> None:
    """Keep the chosen backend if it runs models of ``kind``, else the first enabled one that does."""
    current = combo.currentData()
    if current and choice(current).kind.runs(kind):
        return
    for key in COREML_PREFERENCE if kind.is_coreml else TORCH_PREFERENCE:
        index = combo.findData(key)
        if index >= 0 and combo.model().item(index).isEnabled():
            combo.setCurrentIndex(index)
            return


def backend_mismatch(combo: QComboBox, info: ModelInfo) -> str | None:
    """Why the chosen backend cannot run this model (one line with the fix), or None when it can."""
    if choice(combo.currentData() or "cpu").kind.runs(info.kind):
        return None
    kind = "Core ML" if info.kind.is_coreml else "PyTorch"
    offered = any(combo.model().item(i).isEnabled() and choice(combo.itemData(i)).kind.runs(info.kind)
                  for i in range(combo.count()))
    fix = f"choose a {kind} backend for it" if offered else f"no {kind} backend runs on this machine" + (
        " (Core ML runs models only on macOS)" if info.kind.is_coreml else "")
    return f"{info.name} is a {kind} model; {fix}."
