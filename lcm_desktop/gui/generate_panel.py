"""Prompt and parameters → a ``GenerationRequest``; every control keyboard-reachable and named."""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import InvalidRequestError, LcmError
from ..core.model_info import ModelInfo
from ..core.request import (
    MAX_GUIDANCE,
    MAX_SEED,
    MAX_STEPS,
    GenerationRequest,
    random_seed,
    schedule_points,
)
from .prompt_highlight import PromptHighlighter


class StartMode(Enum):
    TEXT = "Text"  # text to image
    IMAGE = "Image"  # from an opened, pasted or dropped picture (on the canvas)
    SKETCH = "Sketch"  # from what is painted on the canvas


DEFAULT_STRENGTH = 0.6
MIN_STRENGTH_PERCENT = 2  # 0.02 leaves one point of the 50-point LCM schedule: always one step

SIZE_PRESETS = [(512, 512), (768, 768), (512, 768), (768, 512)]
SDXL_PRESETS = [(1024, 1024)]


class PromptEdit(QPlainTextEdit):
    """Multi-line prompt; Ctrl/⌘+Return submits, Tab moves focus on (not a tab character)."""

    submitted = Signal()

    def keyPressEvent(self, event):
        mods = event.modifiers()
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and mods & Qt.KeyboardModifier.ControlModifier:
            self.submitted.emit()
            return
        if event.key() == Qt.Key.Key_Tab and not mods:
            self.focusNextChild()
            return
        super().keyPressEvent(event)


class GeneratePanel(QWidget):
    changed = Signal()  # any parameter edited (live mode listens)
    generateRequested = Signal()
    cancelRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("generatePanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(8)

        self.prompt = PromptEdit()
        self.prompt.setObjectName("promptEdit")
        self.prompt.setAccessibleName("Prompt")
        self.prompt.setPlaceholderText("Describe the image…  (Ctrl+Return to generate)")
        self.prompt.setTabChangesFocus(True)
        self._highlighter = PromptHighlighter(self.prompt.document())  # (word:1.3), <lora:…>, BREAK
        self.negative = PromptEdit()
        self.negative.setObjectName("negativePromptEdit")
        self.negative.setAccessibleName("Negative prompt")
        self.negative.setPlaceholderText("Negative prompt (models with classifier-free guidance)")
        self.negative.setTabChangesFocus(True)
        self.negative.setMaximumHeight(72)
        layout.addWidget(_label("Prompt", self.prompt))
        layout.addWidget(self.prompt, 3)
        layout.addWidget(_label("Negative prompt", self.negative))
        layout.addWidget(self.negative, 1)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.model = _named(QComboBox(), "modelCombo", "Model")
        self.backend = _named(QComboBox(), "backendCombo", "Backend")
        self.size = _named(QComboBox(), "sizeCombo", "Size")
        self.steps = _named(QSpinBox(), "stepsSpin", "Steps")
        self.steps.setRange(1, MAX_STEPS)  # the request's own limit (LCMs look best at 2–8)
        self.steps.setValue(4)
        self.guidance = _named(QDoubleSpinBox(), "guidanceSpin", "Guidance scale")
        self.guidance.setRange(0.0, MAX_GUIDANCE)
        self.guidance.setSingleStep(0.5)
        self.guidance.setDecimals(1)
        self.seed = _named(QSpinBox(), "seedSpin", "Seed")
        self.seed.setRange(0, min(MAX_SEED, 2**31 - 1))
        self.seed_lock = _named(QCheckBox("Lock"), "seedLockCheck", "Lock seed")
        self.seed_lock.setToolTip("Locked: every image uses this seed. Unlocked: a new random seed each time.")
        self.seed_random = _named(QToolButton(), "seedRandomButton", "New random seed")
        self.seed_random.setText("New")
        self.seed_random.setToolTip("Pick a new random seed")
        self.seed_random.clicked.connect(lambda: self.seed.setValue(random_seed() % (self.seed.maximum() + 1)))
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.seed_random)
        seed_row.addWidget(self.seed_lock)
        self.batch = _named(QSpinBox(), "batchSpin", "Batch count")
        self.batch.setRange(1, 8)
        form.addRow("Model", self.model)
        form.addRow("Backend", self.backend)
        form.addRow("Size", self.size)
        form.addRow("Steps", self.steps)
        form.addRow("Guidance", self.guidance)
        form.addRow("Seed", seed_row)
        form.addRow("Batch", self.batch)
        self.start_mode = _named(QComboBox(), "startModeCombo", "Start from")
        for mode in StartMode:
            self.start_mode.addItem(mode.value, mode)
        self.start_mode.setToolTip("Start from text only, a picture, or a sketch on the canvas")
        self.strength = _named(QSlider(Qt.Orientation.Horizontal), "strengthSlider", "Strength")
        self.strength.setRange(MIN_STRENGTH_PERCENT, 100)
        self.strength.setValue(round(DEFAULT_STRENGTH * 100))
        self.strength.setToolTip("How far from the starting picture: low keeps it, 1.0 ignores it")
        self.strength_label = QLabel()
        self.strength_label.setObjectName("strengthLabel")
        self.strength_label.setMinimumWidth(110)
        strength_row = QHBoxLayout()
        strength_row.addWidget(self.strength, 1)
        strength_row.addWidget(self.strength_label)
        form.addRow("Start from", self.start_mode)
        form.addRow("Strength", strength_row)
        self._form, self._strength_row = form, strength_row
        layout.addLayout(form)

        self._sections = QVBoxLayout()  # the window adds panels here (styles)
        layout.addLayout(self._sections)
        self.live = _named(QCheckBox("Live — regenerate as you type or paint"), "liveToggle", "Live mode")
        layout.addWidget(self.live)
        buttons = QHBoxLayout()
        self.generate_button = _named(QPushButton("Generate"), "generateButton", "Generate")
        self.generate_button.setDefault(True)
        self.generate_button.setToolTip("Generate (Ctrl+Return)")
        self.cancel_button = _named(QPushButton("Cancel"), "cancelButton", "Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setToolTip("Cancel (Esc)")
        buttons.addWidget(self.generate_button, 2)
        buttons.addWidget(self.cancel_button, 1)
        layout.addLayout(buttons)

        self.generate_button.clicked.connect(self.generateRequested)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.prompt.submitted.connect(self.generateRequested)
        self.negative.submitted.connect(self.generateRequested)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, activated=self.cancelRequested.emit)
        for signal in (self.prompt.textChanged, self.negative.textChanged, self.steps.valueChanged,
                       self.guidance.valueChanged, self.seed.valueChanged, self.size.currentIndexChanged,
                       self.strength.valueChanged, self.start_mode.currentIndexChanged):
            signal.connect(self.changed)
        for signal in (self.strength.valueChanged, self.steps.valueChanged, self.start_mode.currentIndexChanged):
            signal.connect(self._show_strength)
        self._show_strength()

    # -- model-dependent defaults --------------------------------------------------------------
    def set_model_defaults(self, info: ModelInfo) -> None:
        """Size presets (native first; a Core ML model has only its one size), guidance and steps defaults, the
        negative prompt enabled only where it works, and the model's example prompt as the placeholder."""
        native, d = info.native_size, info.defaults
        cfg_capable, sdxl = info.cfg_capable, info.family == "sdxl"
        current = self.size.currentData()
        self.size.blockSignals(True)
        self.size.clear()
        others = [] if info.fixed_size else SIZE_PRESETS + (SDXL_PRESETS if sdxl else [])
        presets = [tuple(native)] + [p for p in others if p != tuple(native)]
        for w, h in presets:
            label = f"{w} × {h}" + ("  (native)" if (w, h) == tuple(native) else "")
            self.size.addItem(label, (w, h))
        index = self.size.findData(current) if current else 0
        self.size.setCurrentIndex(max(index, 0))
        self.size.blockSignals(False)
        self.guidance.setValue(d.guidance_scale)
        self.steps.setValue(min(max(d.steps, 1), MAX_STEPS))
        example = f"e.g. “{d.example_prompt}”" if d.example_prompt else "Describe the image…"
        self.prompt.setPlaceholderText(f"{example}  (Ctrl+Return to generate)")
        self.negative.setEnabled(cfg_capable)
        self.negative.setToolTip("" if cfg_capable else "This model has no classifier-free guidance: a negative "
                                 "prompt has no effect (choose guidance > 1 with an LCM-LoRA model).")

    # -- request -------------------------------------------------------------------------------
    def add_section(self, widget: QWidget) -> None:
        """A panel of its own (the styles) below the parameters, above Live and Generate."""
        self._sections.addWidget(widget)

    # -- start image and strength -------------------------------------------------------------
    @property
    def mode(self) -> StartMode:
        return self.start_mode.currentData()

    def set_mode(self, mode: StartMode) -> None:
        self.start_mode.setCurrentIndex(self.start_mode.findData(mode))

    @property
    def strength_value(self) -> float:
        return self.strength.value() / 100

    def steps_to_run(self) -> int:
        """The steps a request will run: image-to-image lowers them to the points the strength leaves."""
        steps = self.steps.value()
        return steps if self.mode is StartMode.TEXT else max(1, min(steps, schedule_points(self.strength_value)))

    def _show_strength(self) -> None:
        self._form.setRowVisible(self._strength_row, self.mode is not StartMode.TEXT)
        run, asked = self.steps_to_run(), self.steps.value()
        text = f"{self.strength_value:.2f} · {run} step{'s' if run != 1 else ''}"
        self.strength_label.setText(text + (f" (of {asked})" if run < asked else ""))
        self.strength_label.setToolTip(
            f"At strength {self.strength_value:.2f} the LCM schedule has {schedule_points(self.strength_value)} "
            f"points, so {run} of the {asked} steps run." if run < asked else
            f"{run} denoising step{'s' if run != 1 else ''} from the starting picture noised to strength "
            f"{self.strength_value:.2f}.")

    # -- request -------------------------------------------------------------------------------
    def request(self, init_image=None, loras: tuple = ()) -> GenerationRequest:
        """The request the controls describe (raises InvalidRequestError naming the field).  ``init_image`` (the
        canvas's picture) is used unless the start mode is Text; too few schedule points lower the steps."""
        width, height = self.size.currentData() or (None, None)
        if not self.seed_lock.isChecked():
            self.seed.blockSignals(True)
            self.seed.setValue(random_seed() % (self.seed.maximum() + 1))
            self.seed.blockSignals(False)
        prompt = self.prompt.toPlainText().strip()
        if not prompt:
            raise InvalidRequestError("prompt", "", "some text describing the image")
        img2img = self.mode is not StartMode.TEXT
        if img2img and init_image is None:
            raise LcmError(f"{self.mode.value} mode starts from the canvas, which is empty: open, paste (Ctrl+V) or "
                           "drop a picture on it, paint a sketch, or start from Text.")
        return GenerationRequest(
            prompt=prompt,
            negative_prompt=self.negative.toPlainText().strip() if self.negative.isEnabled() else "",
            steps=self.steps_to_run(), guidance_scale=round(self.guidance.value(), 2),
            width=width, height=height, seed=self.seed.value(), batch_size=self.batch.value(),
            init_image=init_image if img2img else None, strength=self.strength_value if img2img else 1.0,
            loras=loras,
        )

    def apply(self, prompt: str | None = None, negative: str | None = None, steps: int | None = None,
              guidance: float | None = None, seed: int | None = None, size: tuple[int, int] | None = None,
              strength: float | None = None) -> None:
        """Restore parameters (drop-in of a PNG, history, settings); unknown values are left alone."""
        if strength is not None and 0 < strength <= 1:
            self.strength.setValue(max(MIN_STRENGTH_PERCENT, round(strength * 100)))
        if prompt is not None:
            self.prompt.setPlainText(prompt)
        if negative is not None:
            self.negative.setPlainText(negative)
        if steps:
            self.steps.setValue(min(max(steps, 1), MAX_STEPS))
        if guidance is not None:
            self.guidance.setValue(guidance)
        if seed is not None and 0 <= seed <= self.seed.maximum():
            self.seed.setValue(seed)
            self.seed_lock.setChecked(True)
        if size:
            index = self.size.findData(tuple(size))
            if index < 0:
                self.size.addItem(f"{size[0]} × {size[1]}", tuple(size))
                index = self.size.count() - 1
            self.size.setCurrentIndex(index)

    # -- remembered between runs ---------------------------------------------------------------
    def save_settings(self, s: QSettings) -> None:
        for key, value in (("model", self.model.currentData() or ""), ("backend", self.backend.currentData() or ""),
                           ("prompt", self.prompt.toPlainText()), ("negative", self.negative.toPlainText()),
                           ("steps", self.steps.value()), ("guidance", self.guidance.value()),
                           ("strength", self.strength_value), ("start_mode", self.mode.value)):
            s.setValue(key, value)
        s.sync()

    def restore_settings(self, s: QSettings, explicit_model: bool) -> None:
        """The last run's values (the model only when none was given on the command line); damaged ones ignored."""
        if not explicit_model:
            index = self.model.findData(s.value("model", ""))
            if index >= 0:
                self.model.setCurrentIndex(index)
        self.apply(prompt=s.value("prompt", None), negative=s.value("negative", None),
                   steps=_number(int, s.value("steps")), guidance=_number(float, s.value("guidance")),
                   strength=_number(float, s.value("strength")))
        mode = next((m for m in StartMode if m.value == s.value("start_mode")), None)
        if mode is not None:
            self.set_mode(mode)

    def set_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)


def _named(widget, name: str, accessible: str):
    widget.setObjectName(name)
    widget.setAccessibleName(accessible)
    return widget


def _number(kind: type, value):
    """``kind(value)``, or None for a missing or damaged setting."""
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _label(text: str, buddy: QWidget) -> QLabel:
    label = QLabel(text)
    label.setBuddy(buddy)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label
