"""Control images from pictures, with nothing to download: a picture in, the control model's input out.

- ``scribble`` — lines as drawn, in ControlNet 1.1's convention: white lines on black.  A drawing on light paper
  (dark lines on white: mean brightness above the middle) is inverted; a line layer already white on black is
  kept.  Grey anti-aliased edges stay grey (the scribble models were trained on soft lines too).
- ``canny`` — edges of any picture by OpenCV's ``cv2.Canny`` with thresholds 100 / 200 on the greyscale picture:
  the detector and the settings lllyasviel's ControlNet canny annotator uses (``annotator/canny``: ``cv2.Canny(img,
  100, 200)``), so the edges look like what ``control_v11p_sd15_canny`` was trained on.  opencv-python-headless is
  the packaging without GUI libraries; scikit-image's Canny differs (Gaussian σ, hysteresis on gradient magnitude
  in floats) and would give thinner, different edges than the models were trained with.
- ``none`` — the picture as it is.

Input: an RGB PIL image already fitted to the output size; output: an RGB PIL image of the same size.
"""

from __future__ import annotations

from typing import Any

from .control import Preprocess
from .errors import BackendUnavailableError

CANNY_LOW, CANNY_HIGH = 100, 200


def preprocess_control(image: Any, how: Preprocess | str) -> Any:
    how = Preprocess(how)
    if how is Preprocess.SCRIBBLE:
        return scribble(image)
    if how is Preprocess.CANNY:
        return canny(image)
    return image.convert("RGB")


def scribble(image: Any) -> Any:
    """White lines on black; dark-on-light paper is inverted (decided by the mean brightness)."""
    import numpy as np
    from PIL import Image

    grey = np.asarray(image.convert("L"), dtype=np.uint8)
    if grey.mean() > 127.5:
        grey = 255 - grey
    return Image.fromarray(grey, "L").convert("RGB")


def canny(image: Any, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> Any:
    """OpenCV's Canny edges (white on black) of the greyscale picture."""
    import numpy as np
    from PIL import Image

    try:
        import cv2
    except ImportError as exc:  # a trimmed install
        raise BackendUnavailableError("The canny preprocessor needs OpenCV; install opencv-python-headless.") from exc
    edges = cv2.Canny(np.asarray(image.convert("L"), dtype=np.uint8), low, high)
    return Image.fromarray(edges, "L").convert("RGB")
