"""The prompt and parameters, bound to the window's ``Session``: every edit writes the session, every change of
the session shows here (a restored PNG, the settings, a new seed); every control keyboard-reachable and named."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
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

from ..core.errors import LcmError
from ..core.model_info import ModelInfo
from ..core.presets import default_steps, preset_named
from ..core.request import MAX_BATCH, MAX_GUIDANCE, MAX_STEPS, schedule_points
from ..session.state import APP_MAX_SEED, Session, StartMode
from .prompt_highlight import PromptHighlighter

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
    generateRequested = Signal()
    cancelRequested = Signal()

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.original_steps = 50  # the selected model's schedule length (set_model_defaults)
        self._info: ModelInfo | None = None
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
        self.seed.setRange(0, APP_MAX_SEED)
        self.seed_lock = _named(QCheckBox("Lock"), "seedLockCheck", "Lock seed")
        self.seed_lock.setToolTip("Locked: every image uses this seed. Unlocked: a new random seed each time.")
        self.seed_random = _named(QToolButton(), "seedRandomButton", "New random seed")
        self.seed_random.setText("New")
        self.seed_random.setToolTip("Pick a new random seed")
        self.seed_random.clicked.connect(session.new_seed)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.seed_random)
        seed_row.addWidget(self.seed_lock)
        self.sampler = _named(QComboBox(), "samplerCombo", "Sampler")
        self.sampler.setToolTip("The sampler preset: the model's own first, then the others its distillation runs")
        self.eta = _named(QDoubleSpinBox(), "etaSpin", "Eta")
        self.eta.setRange(0.0, 1.0)
        self.eta.setSingleStep(0.1)
        self.eta.setToolTip("TCD's eta (gamma): 0 is deterministic, higher adds detail-renewing noise")
        self.batch = _named(QSpinBox(), "batchSpin", "Batch count")
        self.batch.setRange(1, MAX_BATCH)
        form.addRow("Model", self.model)
        form.addRow("Backend", self.backend)
        form.addRow("Size", self.size)
        form.addRow("Sampler", self.sampler)
        form.addRow("Eta", self.eta)
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
        self._bind()

    # -- binding: widgets → session, session → widgets ------------------------------------------------
    def _bind(self) -> None:
        s = self.session
        edits = {
            "prompt": (self.prompt.textChanged, lambda: self.prompt.toPlainText()),
            "negative_prompt": (self.negative.textChanged, lambda: self.negative.toPlainText()),
            "steps": (self.steps.valueChanged, self.steps.value),
            "guidance_scale": (self.guidance.valueChanged, lambda: round(self.guidance.value(), 2)),
            "seed": (self.seed.valueChanged, self.seed.value),
            "seed_locked": (self.seed_lock.toggled, self.seed_lock.isChecked),
            "size": (self.size.currentIndexChanged, lambda: self.size.currentData()),
            "batch_size": (self.batch.valueChanged, self.batch.value),
            "start_mode": (self.start_mode.currentIndexChanged, lambda: self.start_mode.currentData()),
            "strength": (self.strength.valueChanged, lambda: self.strength.value() / 100),
            "model": (self.model.currentIndexChanged, lambda: self.model.currentData() or ""),
            "backend": (self.backend.currentIndexChanged, lambda: self.backend.currentData() or ""),
            "live": (self.live.toggled, self.live.isChecked),
            "sampler": (self.sampler.currentIndexChanged, lambda: self.sampler.currentData() or ""),
            "eta": (self.eta.valueChanged, lambda: round(self.eta.value(), 2)),
        }
        for name, (signal, read) in edits.items():
            signal.connect(lambda *_, name=name, read=read: setattr(s, name, read()))
        s.subscribe(self._show)
        self.sampler.activated.connect(self._sampler_chosen)
        for name in edits:
            self._show(name)

    def _show(self, name: str) -> None:
        """Show the session's ``name`` in its widget (signals blocked: the session already holds it)."""
        s, value = self.session, getattr(self.session, name)
        widget = {"prompt": self.prompt, "negative_prompt": self.negative, "steps": self.steps,
                  "guidance_scale": self.guidance, "seed": self.seed, "seed_locked": self.seed_lock,
                  "size": self.size, "batch_size": self.batch, "start_mode": self.start_mode,
                  "strength": self.strength, "model": self.model, "backend": self.backend,
                  "live": self.live, "sampler": self.sampler, "eta": self.eta}.get(name)
        if widget is not None:
            widget.blockSignals(True)
            if name in ("prompt", "negative_prompt"):
                if widget.toPlainText() != value:
                    widget.setPlainText(value)
            elif name == "strength":
                widget.setValue(max(MIN_STRENGTH_PERCENT, round(value * 100)))
            elif name == "eta":
                preset = self._preset()
                widget.setValue(value if value is not None else (preset.default_eta or 0.0) if preset else 0.0)
            elif name in ("size", "start_mode", "model", "backend", "sampler"):
                self._select(widget, value, name)
            elif name in ("seed_locked", "live"):
                widget.setChecked(value)
            else:
                widget.setValue(min(value, widget.maximum()) if name == "seed" else value)
            widget.blockSignals(False)
        if name in ("strength", "steps", "start_mode", "sampler"):
            self._show_strength()
        if name == "sampler":
            preset = self._preset()
            self._form.setRowVisible(self.eta, preset is not None and preset.takes_eta)
            self._show("eta")
        if name == "live" and s.live:
            s.seed_locked = True  # the picture changes only where the input does

    def _preset(self):
        """The preset the session runs (its chosen one, else the model's own); None before a model is known."""
        if self._info is None:
            return None
        return preset_named(self.session.sampler) if self.session.sampler else self._info.preset

    def _sampler_chosen(self) -> None:
        """The user picked a sampler: Generate runs the preset's own steps, its eta from its default."""
        if self._info is not None:
            self.session.update(steps=default_steps(self._info, self._preset()), eta=None)

    def _select(self, combo: QComboBox, value, name: str) -> None:
        index = combo.findData(value) if value not in (None, "") else -1
        if index < 0 and name == "size" and value:
            combo.addItem(f"{value[0]} × {value[1]}", tuple(value))
            index = combo.count() - 1
        if index >= 0:
            combo.setCurrentIndex(index)

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
        self.original_steps, self._info = info.original_steps, info
        self.sampler.blockSignals(True)
        self.sampler.clear()
        for i, preset in enumerate(info.presets):  # its own first, as "" (the model's own)
            self.sampler.addItem(f"{preset.label} ({preset.name})" + (" — this model's" if i == 0 else ""),
                                 "" if i == 0 else preset.name)
        self.sampler.blockSignals(False)
        if self.sampler.findData(self.session.sampler) < 0:
            self.session.update(sampler="", eta=None)
        self._show("sampler")
        self.session.update(size=self.size.currentData(), guidance_scale=d.guidance_scale,
                            steps=min(max(d.steps, 1), MAX_STEPS))
        example = f"e.g. “{d.example_prompt}”" if d.example_prompt else "Describe the image…"
        self.prompt.setPlaceholderText(f"{example}  (Ctrl+Return to generate)")
        self.negative.setEnabled(cfg_capable)
        self.negative.setToolTip("" if cfg_capable else "This model has no classifier-free guidance: a negative "
                                 "prompt has no effect (choose guidance > 1 with an LCM-LoRA model).")

    # -- request -------------------------------------------------------------------------------
    def add_section(self, widget: QWidget) -> None:
        """A panel of its own (the styles) below the parameters, above Live and Generate."""
        self._sections.addWidget(widget)

    # -- start mode and strength (shown from the session) ------------------------------------------------
    @property
    def mode(self) -> StartMode:
        return self.session.start_mode

    def set_mode(self, mode: StartMode) -> None:
        self.session.start_mode = mode

    @property
    def strength_value(self) -> float:
        return self.session.strength

    def _show_strength(self) -> None:
        s = self.session
        self._form.setRowVisible(self._strength_row, s.is_img2img)
        try:
            (run, note), asked = s.steps_to_run(self.original_steps), s.steps
        except LcmError as exc:  # a strength below one point of the schedule: generating will say so
            self.strength_label.setText(f"{s.strength:.2f}")
            self.strength_label.setToolTip(exc.user_message)
            return
        points = schedule_points(s.strength, self.original_steps)
        self.strength_label.setText(f"{s.strength:.2f} · {run} step{'s' if run != 1 else ''}" +
                                    (f" (of {asked})" if run < asked else ""))
        self.strength_label.setToolTip(note or f"{run} denoising step{'s' if run != 1 else ''} from the starting "
                                       f"picture noised to strength {s.strength:.2f} ({points} schedule points).")

    def set_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)


def _named(widget, name: str, accessible: str):
    widget.setObjectName(name)
    widget.setAccessibleName(accessible)
    return widget


def _label(text: str, buddy: QWidget) -> QLabel:
    label = QLabel(text)
    label.setBuddy(buddy)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label
