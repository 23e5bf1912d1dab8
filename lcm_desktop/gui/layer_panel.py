"""The sketch's overlay layers in the window: a row of layer tools under the canvas (Lines, Mask, hide, clear,
invert, mask blur, Extend canvas) and the Control panel in the left column (on/off, control model, scale, "Edges
from picture").  Widgets bind to the ``Session`` (control and mask inputs) and the ``SketchDocument`` (strokes);
what the layers add to a request is ``session.layers``' rule, fed by ``LayerInputs.images()``."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.model_info import ModelInfo
from ..models.resolve import resolve_control
from ..session.state import Session, StartMode
from .canvas import LAYER_COLORS, SketchCanvas
from .sketch_document import LINES, MASK, PAINT

SCALE_STEPS = 100  # the scale slider's ticks per 1.0 (0–2)
EXTEND_SIDES = (16, 32, 64, 128)  # "Extend canvas" choices, pixels per side


def _named(widget, name: str, accessible: str, tip: str):
    widget.setObjectName(name)
    widget.setAccessibleName(accessible)
    widget.setToolTip(tip)
    return widget


class LayerTools(QWidget):
    """Lines / Mask layer toggles and their own actions; neither checked: strokes go to the paint layer."""

    def __init__(self, canvas: SketchCanvas, session: Session, parent=None):
        super().__init__(parent)
        self.setObjectName("layerTools")
        self.canvas, self.document, self.session = canvas, canvas.document, session
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        self.lines_button = self._toggle("linesLayerButton", "Lines",
                                         "Draw lines that steer the picture's structure (a scribble control)")
        self.lines_shown = _named(QCheckBox("Show"), "linesVisibleCheck", "Show lines",
                                  "Show the lines (hidden lines do not steer the picture)")
        self.lines_shown.setChecked(True)
        self.lines_shown.toggled.connect(lambda on: self.document.set_visible(LINES, on))
        clear_lines = self._button("clearLinesButton", "Clear lines", lambda: self.document.clear_layer(LINES))
        self.mask_button = self._toggle("maskLayerButton", "Mask",
                                        "Paint where the picture is repainted (the eraser takes mask away)")
        invert = self._button("invertMaskButton", "Invert",
                              lambda: self.document.invert_layer(MASK, LAYER_COLORS[MASK]))
        clear_mask = self._button("clearMaskButton", "Clear mask", lambda: self.document.clear_layer(MASK))
        self.blur_spin = _named(QSpinBox(), "maskBlurSpin", "Mask blur", "Soften the mask's edge (pixels)")
        self.blur_spin.setRange(0, 64)
        self.blur_spin.setPrefix("blur ")
        self.blur_spin.setValue(session.mask_blur)
        self.blur_spin.valueChanged.connect(lambda v: setattr(session, "mask_blur", v))
        self.extend_button = _named(QToolButton(), "extendCanvasButton", "Extend canvas",
                                    "Outpaint: grow the canvas on every side; the new border becomes the mask")
        self.extend_button.setText("Extend")
        self.extend_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.extend_button)
        for pixels in EXTEND_SIDES:
            menu.addAction(f"{pixels} px per side", lambda p=pixels: self.extend(p))
        self.extend_button.setMenu(menu)
        for widget in (self.lines_button, self.lines_shown, clear_lines, QLabel("·"), self.mask_button, invert,
                       clear_mask, self.blur_spin, self.extend_button):
            row.addWidget(widget)
        row.addStretch(1)
        session.subscribe(lambda name: name == "mask_blur" and self.blur_spin.setValue(session.mask_blur))

    def _toggle(self, name: str, label: str, tip: str) -> QToolButton:
        button = _named(QToolButton(), name, label, tip)
        button.setText(label)
        button.setCheckable(True)
        button.toggled.connect(lambda on, b=button: self._layer_chosen(b))
        return button

    def _button(self, name: str, label: str, slot) -> QToolButton:
        button = _named(QToolButton(), name, label, label)
        button.setText(label)
        button.clicked.connect(slot)
        return button

    def _layer_chosen(self, sender: QToolButton) -> None:
        if sender is self.lines_button and self.lines_button.isChecked():
            self.mask_button.setChecked(False)
            self.session.control_enabled = True  # drawing lines means using them
        elif sender is self.mask_button and self.mask_button.isChecked():
            self.lines_button.setChecked(False)
        self.canvas.layer = LINES if self.lines_button.isChecked() else MASK if self.mask_button.isChecked() \
            else PAINT

    def extend(self, pixels: int) -> None:
        """Grow the canvas by ``pixels`` a side; the border becomes the mask and the output size follows."""
        self.document.extend(pixels, MASK, LAYER_COLORS[MASK])
        size = self.document.image_size()
        if self.session.start_mode is StartMode.TEXT:
            self.session.start_mode = StartMode.IMAGE
        self.session.size = (size.width(), size.height())


class ControlPanel(QGroupBox):
    """On/off, control model, scale, "Edges from picture": the session's control inputs."""

    def __init__(self, session: Session, parent=None):
        super().__init__("Control", parent)
        self.setObjectName("controlPanel")
        self.session = session
        layout = QVBoxLayout(self)
        self.enable = _named(QCheckBox("Steer with lines"), "controlEnableCheck", "Structure control",
                             "Lines on the canvas's Lines layer steer the picture's structure")
        self.enable.toggled.connect(lambda on: setattr(session, "control_enabled", on))
        self.model = _named(QComboBox(), "controlModelCombo", "Control model", "The control model that reads the lines")
        self.model.currentIndexChanged.connect(
            lambda _: setattr(session, "control_model", self.model.currentData() or ""))
        scale_row = QHBoxLayout()
        self.scale = _named(QSlider(Qt.Orientation.Horizontal), "controlScaleSlider", "Control scale",
                            "How strongly the lines steer (0–2)")
        self.scale.setRange(0, 2 * SCALE_STEPS)
        self.scale.valueChanged.connect(lambda v: setattr(session, "control_scale", v / SCALE_STEPS))
        self.scale_label = QLabel()
        scale_row.addWidget(QLabel("Scale"))
        scale_row.addWidget(self.scale, 1)
        scale_row.addWidget(self.scale_label)
        self.edges = _named(QPushButton("Edges from picture"), "edgesFromPictureButton", "Edges from picture",
                            "Also steer by the edges (canny) of the canvas's picture")
        self.edges.setCheckable(True)
        self.edges.toggled.connect(lambda on: setattr(session, "control_edges", on))
        for widget in (self.enable, self.model):
            layout.addWidget(widget)
        layout.addLayout(scale_row)
        layout.addWidget(self.edges)
        session.subscribe(self._session_changed)
        self._show()

    def set_model(self, info: ModelInfo | None) -> None:
        """The model's own control first ("" : the session's default), then nothing else yet."""
        self.model.blockSignals(True)
        self.model.clear()
        own = info.default_control if info is not None else None
        if own is not None:
            self.model.addItem(f"{own[0]} (the model's own)", "")
        elif self.session.control_model:
            self.model.addItem(self.session.control_model, self.session.control_model)
        else:
            self.model.addItem("none: this model ships no control model", "")
        self.model.setEnabled(own is not None)
        self.model.blockSignals(False)

    def _session_changed(self, name: str) -> None:
        if name.startswith("control_"):
            self._show()

    def _show(self) -> None:
        s = self.session
        for widget, setter in ((self.enable, lambda: self.enable.setChecked(s.control_enabled)),
                               (self.scale, lambda: self.scale.setValue(round(s.control_scale * SCALE_STEPS))),
                               (self.edges, lambda: self.edges.setChecked(s.control_edges))):
            widget.blockSignals(True)
            setter()
            widget.blockSignals(False)
        self.scale_label.setText(f"{s.control_scale:.2f}")


class LayerInputs(QObject):
    """Builds both widgets into the window and hands ``to_request`` the layers' images."""

    def __init__(self, window):
        super().__init__(window)
        self.window, self.session = window, window.session
        self.document = window.canvas_panel.canvas.document
        self.tools = LayerTools(window.canvas_panel.canvas, self.session)
        window.canvas_panel.add_row(self.tools)
        self.control = ControlPanel(self.session)
        window.panel.add_section(self.control)
        self.session.subscribe(lambda name: name == "model" and self.control.set_model(window.model_info))

    def images(self) -> dict:
        """``Session.to_request``'s ``lines``, ``mask`` and ``picture`` arguments from the sketch."""
        s, canvas = self.session, self.window.canvas_panel.canvas
        lines = self.document.coverage(LINES) if s.control_enabled else None
        picture = canvas.to_pil() if s.control_enabled and s.control_edges and not canvas.is_blank else None
        return {"lines": lines, "mask": self.document.coverage(MASK), "picture": picture,
                "resolve_control": resolve_control}

    def live_revision(self) -> bool:
        """Whether the sketch's revision is a live input: it is when the canvas starts the picture or steers it."""
        return self.session.is_img2img or self.session.control_enabled

