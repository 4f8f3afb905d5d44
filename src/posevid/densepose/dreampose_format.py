"""DreamPose's pose format as DensePose writes it: frame numbers in file names and the ``(2, H, W)`` UV canvas.

The canvas is what DreamPose's ``utils/densepose.py`` makes from one ``apply_net.py dump`` entry; both the
extraction job (:mod:`posevid.densepose.extract`) and the dump converter (:mod:`posevid.data.dreampose_poses`) use
it, so a video run through posevid's DensePose and a dump from detectron2 give the same file. Torch-free.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from posevid.errors import InputError

LAST_INT = re.compile(r"(\d+)(?!.*\d)")
"""The last integer of a name: the frame number of ``frame_12_densepose.npy`` or ``img_0007.png``."""


def frame_number(name: str) -> int | None:
    """Last integer in a file name without its suffix (``frame_12_densepose.npy`` -> 12)."""
    stem = name[: -len("_densepose.npy")] if name.endswith("_densepose.npy") else Path(name).stem
    m = LAST_INT.search(stem)
    return int(m.group(1)) if m else None


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "tensor"):  # Boxes
        x = x.tensor
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def dump_entry_to_uv(entry: dict[str, Any], image_size: tuple[int, int], *, empty: str = "error") -> np.ndarray:
    """Reference ``utils/densepose.py`` for one image: first instance's UV placed at its int-truncated box.

    Returns a float64 ``(2, H, W)`` canvas (zeros outside the box). Differences to the reference: a box that
    reaches past the image edge is clipped (the reference raises a shape error); an image without detection
    raises a one-line error, or gives an all-zero map with ``empty="zeros"``.
    """
    h, w = image_size
    canvas = np.zeros((2, h, w), dtype=np.float64)
    name = entry.get("file_name", "?")
    results = entry.get("pred_densepose")
    boxes = entry.get("pred_boxes_XYXY")
    if results is None or boxes is None:
        raise InputError(f"dump entry {name} has no pred_densepose / pred_boxes_XYXY", hint="was it written by apply_net.py dump?")
    if isinstance(results, tuple):  # (results, boxes) from some DensePoseResultExtractor versions
        results = results[0]
    boxes = _as_numpy(boxes)
    if len(results) == 0 or boxes.shape[0] == 0:
        if empty == "zeros":
            return canvas
        raise InputError(f"DensePose found no person in {name}", hint="drop that frame or pass --densepose-empty zeros")
    uv_attr = getattr(results[0], "uv", None)
    if uv_attr is None:
        raise InputError(f"dump entry {name}: the DensePose result has no 'uv' (only chart results are supported)")
    uv = _as_numpy(uv_attr).astype(np.float64)
    x1, y1 = int(boxes[0][0]), int(boxes[0][1])
    x1, y1 = max(x1, 0), max(y1, 0)
    bh, bw = min(uv.shape[1], h - y1), min(uv.shape[2], w - x1)
    if bh > 0 and bw > 0:
        canvas[:, y1 : y1 + bh, x1 : x1 + bw] = uv[:, :bh, :bw]
    return canvas


__all__ = ["LAST_INT", "dump_entry_to_uv", "frame_number"]
