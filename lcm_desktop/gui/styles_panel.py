"""The Styles panel: installed style LoRAs, each with a checkbox and a weight slider; import and delete.

Styles made for another model family are listed but disabled (their tooltip says why); a Core ML model
takes no live styles (they are baked in when it is converted), so the panel is disabled for it.  Every
change emits ``changed`` (live mode regenerates).  The store is ``models.styles.StyleStore``; reading the
folder is a header read per file (small), done when the panel is refreshed, not per generation.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import LcmError
from ..core.model_info import ModelInfo
from ..core.request import MAX_LORA_WEIGHT, LoraWeight
from ..models.disk import format_size
from ..models.styles import InstalledStyle, StyleStore

SLIDER_SCALE = 100  # slider units per 1.0 of weight
MAX_SLIDER_WEIGHT = MAX_LORA_WEIGHT  # the request's own range, so a PNG made at <lora:x:3> restores as 3


class StyleRow(QWidget):
    changed = Signal()
    deleteRequested = Signal(str)

    def __init__(self, style: InstalledStyle, parent=None):
        super().__init__(parent)
        self.style, self.name = style, style.name
        self.setObjectName(f"styleRow:{style.name}")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.check = QCheckBox(style.name)
        self.check.setAccessibleName(f"Use style {style.name}")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setAccessibleName(f"Weight of {style.name}")
        self.slider.setRange(round(-MAX_SLIDER_WEIGHT * SLIDER_SCALE), round(MAX_SLIDER_WEIGHT * SLIDER_SCALE))
        self.slider.setValue(SLIDER_SCALE)
        self.slider.setMaximumWidth(120)
        self.value = QLabel()
        self.value.setMinimumWidth(34)
        layout.addWidget(self.check, 1)
        layout.addWidget(self.slider)
        layout.addWidget(self.value)
        info = style.info
        if info is None:
            tip = f"{style.name}: {style.problem}"
            self.setEnabled(False)
        else:
            words = ", ".join(info.trigger_words[:8])
            tip = (f"{style.name}{' (built in)' if style.builtin else ''} — {info.family_label}, rank {info.rank}, "
                   f"{format_size(style.size_bytes)}"
                   + (f"\nTrigger words: {words}" if words else ""))
        self.setToolTip(tip)
        self.check.toggled.connect(self._changed)
        self.slider.valueChanged.connect(self._changed)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self._show_value()

    @property
    def weight(self) -> float:
        return self.slider.value() / SLIDER_SCALE

    def set_weight(self, weight: float) -> None:
        self.slider.setValue(round(max(-MAX_SLIDER_WEIGHT, min(MAX_SLIDER_WEIGHT, weight)) * SLIDER_SCALE))

    def _show_value(self) -> None:
        self.value.setText(f"{self.weight:.2f}")

    def _changed(self) -> None:
        self._show_value()
        self.changed.emit()

    def _menu(self, pos) -> None:
        menu = QMenu(self)
        delete = menu.addAction(f"Delete {self.name}…", lambda: self.deleteRequested.emit(self.name))
        delete.setEnabled(not self.style.builtin)  # shipped with the app
        menu.exec(self.mapToGlobal(pos))


class StylesPanel(QWidget):
    changed = Signal()  # a style turned on or off, or its weight moved
    message = Signal(str)  # a one-line outcome for the status bar

    def __init__(self, store: StyleStore, parent=None):
        super().__init__(parent)
        self.setObjectName("stylesPanel")
        self.store = store
        self.rows: dict[str, StyleRow] = {}
        self._info: ModelInfo | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        title = QLabel("Styles")
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        self.import_button = QPushButton("Import…")
        self.import_button.setObjectName("importStyleButton")
        self.import_button.setAccessibleName("Import a style")
        self.import_button.setToolTip("Import a style LoRA (.safetensors, diffusers or kohya/AUTOMATIC1111 keys)")
        self.import_button.clicked.connect(self.choose_file)
        self.train_button = QPushButton("New…")
        self.train_button.setObjectName("newStyleButton")
        self.train_button.setAccessibleName("New style from images")
        self.train_button.setToolTip("Teach the selected model a style from a folder of your pictures (LCF)")
        self.train_button.clicked.connect(self.train_new)
        header.addWidget(title)
        header.addStretch(1)
        header.addWidget(self.train_button)
        header.addWidget(self.import_button)
        layout.addLayout(header)
        self.baked = QLabel()  # a Core ML model's styles, fused in at conversion
        self.baked.setObjectName("bakedStylesLabel")
        self.baked.setWordWrap(True)
        self.baked.hide()
        layout.addWidget(self.baked)
        self._list = QWidget()
        self._list_layout = QVBoxLayout(self._list)
        self._list_layout.setContentsMargins(0, 0, 0, 0)
        self._list_layout.setSpacing(2)
        self.empty = QLabel("No styles yet: import a style LoRA (.safetensors) to use it here, or in the prompt as "
                           "<lora:name:0.8>.")
        self.empty.setWordWrap(True)
        self.empty.setObjectName("stylesEmpty")
        self._list_layout.addWidget(self.empty)
        self._list_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._list)
        scroll.setMaximumHeight(130)
        scroll.setObjectName("stylesList")
        layout.addWidget(scroll)
        self.refresh()

    # -- contents ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the styles folder; keep each remaining style's checkbox and weight."""
        kept = {name: (row.check.isChecked(), row.weight) for name, row in self.rows.items()}
        for row in self.rows.values():
            row.deleteLater()
        self.rows.clear()
        for style in self.store.styles():
            row = StyleRow(style)
            on, weight = kept.get(style.name, (False, 1.0))
            row.check.setChecked(on)
            row.set_weight(weight)
            row.changed.connect(self.changed)
            row.deleteRequested.connect(self.delete)
            self._list_layout.insertWidget(self._list_layout.count() - 1, row)
            self.rows[style.name] = row
        self.empty.setVisible(not self.rows)
        self.set_model(self._info)

    def set_model(self, info: ModelInfo | None) -> None:
        """Enable the styles this model can take: its family; none for a Core ML model (baked at conversion)."""
        self._info = info
        coreml = info is not None and info.kind.is_coreml
        baked = ", ".join(f"{name} {weight:g}" for name, weight in info.baked_styles) if coreml else ""
        self.baked.setText(f"Baked into {info.name}: {baked or 'none'}" if coreml else "")
        self.baked.setVisible(coreml)
        self.setToolTip("A Core ML model's styles are baked in when it is converted (python -m convert … --lora "
                        "FILE:WEIGHT)" if coreml else "")
        self._list.setEnabled(not coreml)
        for row in self.rows.values():
            lora = row.style.info
            if lora is None:
                continue
            fits = info is None or lora.family in (None, info.family)
            row.setEnabled(fits)
            if not fits:
                row.check.setChecked(False)
                row.setToolTip(f"{row.name} is made for {lora.family_label} models; {info.name} is not.")

    # -- what a request carries ----------------------------------------------------------------------
    def loras(self) -> tuple[LoraWeight, ...]:
        """The checked, enabled styles at their weights (none for a Core ML model)."""
        if not self._list.isEnabled():
            return ()
        return tuple(LoraWeight(name, row.weight) for name, row in self.rows.items()
                     if row.isEnabled() and row.check.isChecked())

    def set_loras(self, loras) -> list[str]:
        """Show exactly these styles checked at these weights (the session's styles); returns the names that are
        not installed.  A view update: it emits nothing (the session already holds them)."""
        wanted = {lora.name: lora.weight for lora in loras}
        for name, row in self.rows.items():
            row.blockSignals(True)
            row.check.setChecked(name in wanted)
            if name in wanted:
                row.set_weight(wanted[name])
            row._show_value()
            row.blockSignals(False)
        return [name for name in wanted if name not in self.rows]

    # -- new, import and delete ---------------------------------------------------------------------------
    def train_new(self):
        """File ▸ New Style from Images…: the training dialog on the selected model; the new style is listed."""
        from .train_dialog import TrainStyleDialog

        dialog = TrainStyleDialog(self.store.paths, self._info.path if self._info else None, self.window())
        dialog.styleCreated.connect(lambda path: (self.refresh(), self.message.emit(f"New style {path.stem}")))
        dialog.show()
        return dialog

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a Style", str(Path.home()), "Style LoRA (*.safetensors)")
        if path:
            self.import_file(Path(path))

    def import_file(self, path: Path) -> bool:
        try:
            style = self.store.import_file(path)
        except LcmError as exc:
            self.message.emit(exc.user_message)
            return False
        self.refresh()
        self.message.emit(f"Imported the style {style.name}")
        return True

    def delete(self, name: str, confirm: bool = True) -> None:
        if confirm and QMessageBox.question(self, "Delete Style", f"Delete the style {name}? Its file is removed "
                                            "from the app's styles folder.") != QMessageBox.StandardButton.Yes:
            return
        try:
            self.store.delete(name)
        except LcmError as exc:
            self.message.emit(exc.user_message)
            return
        self.refresh()
        self.changed.emit()
        self.message.emit(f"Deleted the style {name}")
