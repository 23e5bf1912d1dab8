"""The backend combo box: which backends exist, which this machine can run, which one a model wants."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox

BACKENDS = [  # (label, engine device, needs)
    ("PyTorch · CPU", "cpu", "cpu"),
    ("PyTorch · CUDA", "cuda", "cuda"),
    ("PyTorch · MPS (Apple GPU)", "mps", "mps"),
    ("Core ML · Neural Engine", "coreml-ne", "coreml"),
    ("Core ML · GPU", "coreml-gpu", "coreml"),
]


def fill_backends(combo: QComboBox, devices: list[str], saved: str = "") -> None:
    """Every backend, those this machine lacks disabled with the reason; keeps the current (or ``saved``)
    choice if it can run here, else picks mps → cuda → cpu. Emits no change signal."""
    current = combo.currentData() or saved
    combo.blockSignals(True)
    combo.clear()
    model = combo.model()
    for label, key, needs in BACKENDS:
        combo.addItem(label, key)
        item = model.item(combo.count() - 1)
        available = needs in devices
        item.setEnabled(available)
        if not available:
            item.setToolTip("Needs macOS with Core ML and a converted model" if needs == "coreml"
                            else f"No {needs.upper()} device on this machine")
    runnable = [k for _, k, n in BACKENDS if n in devices]
    index = combo.findData(current) if current in runnable else combo.findData(
        next((k for k in ("mps", "cuda", "cpu") if k in runnable), "cpu"))
    combo.setCurrentIndex(max(index, 0))
    combo.blockSignals(False)


def prefer_backend(combo: QComboBox, *keys: str) -> None:
    """Keep the chosen backend if it fits the model, else the first enabled one of ``keys``."""
    if combo.currentData() in keys:
        return
    for key in keys:
        index = combo.findData(key)
        if index >= 0 and combo.model().item(index).isEnabled():
            combo.setCurrentIndex(index)
            return
