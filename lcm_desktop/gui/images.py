"""Image conversions between Pillow and Qt, in one place."""

from __future__ import annotations

from PySide6.QtGui import QImage


def pil_to_qimage(image) -> QImage:
    """A deep-copied QImage (safe to hand across threads) from a PIL image."""
    rgb = image.convert("RGB")
    data = rgb.tobytes()
    return QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888).copy()
