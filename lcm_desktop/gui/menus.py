"""The window's menus: each action named for tests and given its standard shortcut."""

from __future__ import annotations

import sys

from PySide6.QtGui import QAction, QKeySequence


def build_menus(window) -> None:
    """File, Edit and Image menus of ``window`` (a ``MainWindow``), wired to the parts that do the work."""

    def action(menu, text, slot, shortcut=None, name=None):
        act = QAction(text, window)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        if slot is not None:
            act.triggered.connect(slot)
        if name:
            act.setObjectName(name)
        menu.addAction(act)
        return act

    images, start = window.actions, window.start
    file_menu = window.menuBar().addMenu("&File")
    window.save_action = action(file_menu, "Save As…", images.save_as, QKeySequence.StandardKey.SaveAs, "saveAsAction")
    window.reveal_action = action(file_menu, "Reveal in Finder" if sys.platform == "darwin" else "Show in Folder",
                                  images.reveal, "Ctrl+Shift+R", "revealAction")
    action(file_menu, "Open Model Folder…", window.choose_model_folder, "Ctrl+O")
    action(file_menu, "Choose Output Folder…", images.choose_output_folder)
    action(file_menu, "Models…", window.open_model_manager, "Ctrl+Shift+M", "modelsAction")
    action(file_menu, "New Style from Images…", window.styles.train_new, None, "newStyleAction")
    window.serve_action = action(file_menu, "Serve the API on this Mac…", None, None, "serveApiAction")
    file_menu.addSeparator()
    action(file_menu, "Quit", window.close, QKeySequence.StandardKey.Quit)
    action(file_menu, "Open Starting Image…", start.choose_file, "Ctrl+Shift+O", "openStartAction")
    edit_menu = window.menuBar().addMenu("&Edit")
    window.copy_action = action(edit_menu, "Copy Image", images.copy_image, QKeySequence.StandardKey.Copy,
                                "copyAction")
    # ⌘V in a text box pastes text there (text widgets take standard keys first); elsewhere it pastes a picture
    action(edit_menu, "Paste Image", start.paste, QKeySequence.StandardKey.Paste, "pasteImageAction")
    image_menu = window.menuBar().addMenu("&Image")
    action(image_menu, "Generate", window.generate, "Ctrl+Return")
    action(image_menu, "Use as Input", start.use_result, "Ctrl+Shift+I", "useAsInputAction")
    action(image_menu, "Cancel", window.cancel)
    action(image_menu, "Delete from History", images.delete_selected, QKeySequence.StandardKey.Delete)
