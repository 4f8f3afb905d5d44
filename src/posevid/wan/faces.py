"""Face boxes and the 512x512 face video that drives Wan2.2-Animate's expressions.

Wan's box (``get_face_bboxes`` in ``utils.py``; the file defines it twice and the second definition is the one
in force): take the 68 face points (the meta's face points ``1:``), in pixels; grow the box's area by
``scale=1.3`` keeping its aspect ratio; the width grows equally on both sides, the height three parts upward
(forehead) to one part downward; clip to the image; truncate to int. Returned as ``[x1, x2, y1, y2]``. The crop
``frame[y1:y2, x1:x2]`` is ``cv2.resize``'d (bilinear) to 512x512.

Where Wan crashes, posevid falls back. A frame whose face points are all at one place (nothing found: Wan
divides 0 by 0 and ``int(nan)`` raises) or whose box is empty after clipping gets the box of the nearest frame
with a face (the earlier one on a tie). When no frame has a face, each frame's box comes from its own head
points (nose, eyes, ears of the body; again the nearest frame's when it has none): a square of 1.5 times their
spread, at least a tenth of the frame's shorter side, centred on them. How many frames were filled is returned,
so a task can report it. Nobody anywhere is a one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from posevid.errors import InputError
from posevid.wan.metas import HEAD, WanMetas

FACE_SCALE = 1.3
FACE_SIZE = 512
HEAD_BOX_SPREAD = 1.5  # head-point fallback: box side / spread of nose, eyes and ears
HEAD_BOX_MIN = 0.1  # ... and at least this fraction of the frame's shorter side


@dataclass
class FaceBoxes:
    """Per-frame ``[x1, x2, y1, y2]`` boxes (T, 4) int64, where each came from, and how many were filled in."""

    boxes: np.ndarray
    sources: list[str]  # "face" (Wan's box), "neighbour" (a nearby frame's face box), "head" (head points)

    @property
    def filled(self) -> int:
        """Frames whose box is not Wan's box of their own face points."""
        return sum(source != "face" for source in self.sources)


def face_box(face: np.ndarray, width: int, height: int, scale: float = FACE_SCALE) -> tuple[int, int, int, int] | None:
    """Wan's box of one frame's normalised (69, 2+) face meta, or None where Wan would crash."""
    points = face[1:, :2] * (width, height)
    min_x, min_y = np.min(points, axis=0)
    max_x, max_y = np.max(points, axis=0)
    box_w, box_h = max_x - min_x, max_y - min_y
    if not (box_w > 0 and box_h > 0):
        return None
    area = box_w * box_h * scale
    grow_w = (np.sqrt(area * (box_w / box_h)) - box_w) / 2
    grow_h = (np.sqrt(area * (box_h / box_w)) - box_h) / 4
    x1, x2 = int(max(min_x - grow_w, 0)), int(min(max_x + grow_w, width))
    y1, y2 = int(max(min_y - 3 * grow_h, 0)), int(min(max_y + grow_h, height))
    if x2 <= x1 or y2 <= y1:
        return None
    return x1, x2, y1, y2


def head_box(body: np.ndarray, width: int, height: int) -> tuple[int, int, int, int] | None:
    """A face box from one frame's normalised body meta: its nose, eyes and ears (None if none was found)."""
    head = body[list(HEAD)]
    points = head[head[:, 2] > 0, :2] * (width, height)
    if len(points) == 0:
        return None
    side = max(HEAD_BOX_SPREAD * float(np.ptp(points, axis=0).max()), HEAD_BOX_MIN * min(width, height))
    cx, cy = points.mean(axis=0)
    x1, x2 = int(max(cx - side / 2, 0)), int(min(cx + side / 2, width))
    y1, y2 = int(max(cy - side / 2, 0)), int(min(cy + side / 2, height))
    if x2 <= x1 or y2 <= y1:
        return None
    return x1, x2, y1, y2


def _nearest(boxes: list[tuple[int, int, int, int] | None], t: int) -> tuple[int, int, int, int]:
    """The box of the frame nearest to ``t`` that has one (the earlier frame on a tie)."""
    have = [i for i, box in enumerate(boxes) if box is not None]
    return boxes[min(have, key=lambda i: (abs(i - t), i))]  # type: ignore[return-value]


def face_boxes(metas: WanMetas, scale: float = FACE_SCALE) -> FaceBoxes:
    """Wan's face box of every frame, with posevid's fall-backs where Wan crashes (module docstring)."""
    w, h = metas.width, metas.height
    own = [face_box(face, w, h, scale) for face in metas.face]
    if any(box is not None for box in own):
        kind, found = "neighbour", own
    else:
        kind, found = "head", [head_box(body, w, h) for body in metas.body]
        if all(box is None for box in found):
            if not (metas.body[..., 2] > 0).any():
                raise InputError("no person found in the driving video", hint="use footage where one person is visible")
            raise InputError("no face or head found in any frame of the driving video", hint="use footage that shows the face")
    boxes, sources = [], []
    for t, box in enumerate(own):
        if box is not None:
            boxes.append(box)
            sources.append("face")
        else:
            boxes.append(found[t] if found[t] is not None else _nearest(found, t))
            sources.append(kind)
    return FaceBoxes(np.array(boxes, dtype=np.int64).reshape(-1, 4), sources)


def face_crops(frames: np.ndarray, boxes: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """(T, size, size, 3) uint8: each frame's ``[x1, x2, y1, y2]`` box, bilinearly resized as Wan does."""
    out = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    for t, (frame, (x1, x2, y1, y2)) in enumerate(zip(frames, boxes, strict=True)):
        out[t] = cv2.resize(np.ascontiguousarray(frame[y1:y2, x1:x2]), (size, size))
    return out
