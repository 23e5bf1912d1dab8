"""The sketch canvas with its tools: open a picture, brush, eraser, fill, colour picker, size, undo/redo, clear,
and "Apply" (the result onto the canvas).  Every control is named for tests and reachable by keyboard."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QColorDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .canvas import SketchCanvas, Tool

TOOLS = [(Tool.BRUSH, "Brush", "B"), (Tool.ERASER, "Eraser", "E"), (Tool.FILL, "Fill", "F"),
         (Tool.PICKER, "Pick", "I")]


def _swatch(color: QColor) -> QIcon:
    pixmap = QPixmap(18, 18)
    pixmap.fill(color)
    return QIcon(pixmap)


class CanvasPanel(QWidget):
    openRequested = Signal()  # "Open…": choose a starting picture
    applyRequested = Signal()  # "Apply": the result onto the canvas
    toolChanged = Signal(object)  # Tool

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("canvasPanel")
        self.canvas = SketchCanvas()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)

        tools = QHBoxLayout()
        tools.setSpacing(4)
        self.open_button = _button(QPushButton("Open…"), "initImageButton", "Open a starting image",
                                   "Open a picture to start from (or paste it with Ctrl+V, or drop it here)")
        tools.addWidget(self.open_button)
        self.tool_group = QButtonGroup(self)
        self.tool_buttons: dict[Tool, QToolButton] = {}
        for tool, label, key in TOOLS:
            button = _button(QToolButton(), f"{tool.value}ToolButton", label, f"{label} ({key})")
            button.setText(label)
            button.setCheckable(True)
            button.setShortcut(QKeySequence(key))
            self.tool_group.addButton(button)
            self.tool_buttons[tool] = button
            tools.addWidget(button)
            button.toggled.connect(lambda on, t=tool: on and self._set_tool(t))
        self.tool_buttons[Tool.BRUSH].setChecked(True)
        self.color_button = _button(QToolButton(), "brushColorButton", "Brush colour",
                                    "Brush colour (Pick takes one from the canvas or the result)")
        self.color_button.clicked.connect(self.choose_color)
        tools.addWidget(self.color_button)
        self.size_spin = _button(QSpinBox(), "brushSizeSpin", "Brush size", "Brush size in image pixels")
        self.size_spin.setRange(1, 256)
        self.size_spin.setSuffix(" px")
        self.size_spin.valueChanged.connect(lambda v: setattr(self.canvas, "brush_size", v))
        tools.addWidget(self.size_spin)
        tools.addStretch(1)
        undo = self.canvas.undo_stack.createUndoAction(self, "Undo")
        redo = self.canvas.undo_stack.createRedoAction(self, "Redo")
        for action, name, keys in ((undo, "undoCanvasButton", QKeySequence.StandardKey.Undo),
                                   (redo, "redoCanvasButton", QKeySequence.StandardKey.Redo)):
            action.setShortcuts(keys)
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(action)
            button = _button(QToolButton(), name, action.text(), action.text())
            button.setDefaultAction(action)
            tools.addWidget(button)
        self.undo_action, self.redo_action = undo, redo
        self.clear_button = _button(QToolButton(), "clearCanvasButton", "Clear canvas", "Clear the canvas to paper")
        self.clear_button.setText("Clear")
        self.clear_button.clicked.connect(self.canvas.clear)
        tools.addWidget(self.clear_button)
        layout.addLayout(tools)
        layout.addWidget(self.canvas, 1)

        bottom = QHBoxLayout()
        self.apply_button = _button(QPushButton("Apply Result"), "applyResultButton", "Apply the result",
                                    "Copy the result onto the canvas, to keep painting on it")
        self.apply_button.clicked.connect(self.applyRequested)
        self.new_seed_check = _button(QCheckBox("New seed after Apply"), "newSeedAfterApplyCheck",
                                      "New seed after Apply",
                                      "Take a new seed after applying: one seed reused on its own result over-sharpens")
        self.new_seed_check.setChecked(True)
        self.hint = QLabel()
        self.hint.setObjectName("canvasHint")
        bottom.addWidget(self.apply_button)
        bottom.addWidget(self.new_seed_check)
        bottom.addStretch(1)
        bottom.addWidget(self.hint)
        layout.addLayout(bottom)

        self.canvas.colorPicked.connect(self._show_color)
        self.open_button.clicked.connect(self.openRequested)
        self.set_brush_size(self.canvas.brush_size)
        self._show_color(self.canvas.brush_color)

    def add_row(self, widget: QWidget) -> None:
        """A row of tools of its own (the layer tools) between the tools and the canvas."""
        self.layout().insertWidget(1, widget)

    def _set_tool(self, tool: Tool) -> None:
        self.canvas.tool = tool
        self.canvas.update()
        self.toolChanged.emit(tool)

    def set_tool(self, tool: Tool) -> None:
        self.tool_buttons[tool].setChecked(True)

    def set_brush_size(self, size: int) -> None:
        self.size_spin.setValue(size)

    def choose_color(self) -> None:
        color = QColorDialog.getColor(self.canvas.brush_color, self, "Brush Colour")
        if color.isValid():
            self.canvas.set_brush_color(color)

    def _show_color(self, color: QColor) -> None:
        self.color_button.setIcon(_swatch(color))
        self.color_button.setToolTip(f"Brush colour {color.name()} (Pick takes one from the canvas or the result)")


def _button(widget, name: str, accessible: str, tip: str):
    widget.setObjectName(name)
    widget.setAccessibleName(accessible)
    widget.setToolTip(tip)
    return widget
