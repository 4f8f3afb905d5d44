"""Whole-body keypoints (COCO-WholeBody-133: body, feet, face, hands): extraction and the arrays Wan-Animate reads.

* :func:`extract_wholebody` runs a whole-body estimator over a video: MediaPipe Holistic (bundled, offline) for
  ``estimator="mediapipe"``, DWPose/RTMW ONNX files (all 133 joints kept) for ``dwpose`` / ``rtmpose``. It returns
  the estimator's layout, like :func:`~posevid.pose.extract_keypoints` does for the body: ``holistic143`` for
  MediaPipe (the BlazePose landmarks are kept so the COCO joint correction can run), ``wholebody133`` otherwise.
* :func:`to_wholebody` gives the COCO-WholeBody-133 sequence (Holistic's body joint-corrected by default, as
  ``posevid pose`` draws it); :func:`wholebody_keypoints` the ``(T, 133, 3)`` pixel array of one person that Wan's
  preprocessing takes: (x, y, score), exactly (0, 0, 0) for a point that is not there.
* :func:`part_presence` counts the frames with a face and with each hand.

Clean-up covers every point: person choice keeps each person's 133 (or 143) points together, smoothing works
per point and leaves points under the threshold as they are (a missing hand stays missing), and frames with
nobody are filled as a whole person (a part missing on either side of the gap stays missing).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from posevid.errors import InputError
from posevid.pose.formats import WHOLEBODY_PARTS
from posevid.pose.sequence import KeypointSequence

WHOLEBODY_FORMATS = ("wholebody133", "holistic143")
_ESTIMATORS = {"mediapipe": ("mediapipe-holistic", {}), "dwpose": ("dwpose", {"keypoints": "wholebody"}),
               "rtmpose": ("rtmpose", {"keypoints": "wholebody"})}  # fmt: skip
SMALL_TOE = ("big-toe", "absent")


def wholebody_estimator(estimator: str, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The whole-body variant of a body estimator name: ``mediapipe`` -> Holistic, ``dwpose``/``rtmpose`` -> 133 joints.

    Other names (``mediapipe-holistic``, a registered whole-body estimator) are returned as they are.
    """
    name, extra = _ESTIMATORS.get(estimator, (estimator, {}))
    return name, {**(options or {}), **extra}


def extract_wholebody(
    video_path: str | os.PathLike, *, estimator: str = "mediapipe", estimator_options: dict[str, Any] | None = None, **options
) -> KeypointSequence:
    """Whole-body track of a video: :func:`~posevid.pose.extract_keypoints` with the whole-body estimator.

    ``options`` are those of ``extract_keypoints`` (stride, smoothing, person, workers, ...). The result is in the
    estimator's layout (``holistic143`` or ``wholebody133``); see :func:`to_wholebody` and :func:`wholebody_keypoints`.
    """
    from posevid.pose.extract import extract_keypoints

    name, opts = wholebody_estimator(estimator, estimator_options)
    seq = extract_keypoints(video_path, estimator=name, estimator_options=opts, **options)
    if seq.meta.get("estimator_format") not in WHOLEBODY_FORMATS:
        raise InputError(f"pose estimator '{estimator}' does not give whole-body keypoints", hint="use mediapipe, dwpose or rtmpose")
    return seq


def to_wholebody(seq: KeypointSequence, *, joint_correction: bool = True) -> KeypointSequence:
    """The sequence in COCO-WholeBody-133.

    Holistic-143: the body joints by the fitted BlazePose -> COCO correction (``joint_correction``, what
    ``posevid pose`` draws by default), else the same-named landmarks. A body-only sequence gets feet, face and
    hands with score 0 (absent).
    """
    from posevid.pose.mmpose_fit import correct_sequence

    if seq.format == "holistic143" and joint_correction:
        return correct_sequence(seq)
    return seq if seq.format == "wholebody133" else seq.to_format("wholebody133")


def wholebody_keypoints(seq: KeypointSequence, person: int = 0, *, joint_correction: bool = True, small_toe: str = "big-toe") -> np.ndarray:
    """``(T, 133, 3)`` float64 COCO-WholeBody keypoints of one person in pixels: what Wan-Animate's preprocessing takes.

    A point with score 0 is exactly (0, 0, 0) (clean-up may have moved or interpolated the coordinates of absent
    points). ``small_toe="big-toe"``: a small toe that is absent while the big toe is found takes the big toe's
    point and score. Why: MediaPipe has no small toe, and Wan's body points average each foot's big and small toe
    (``split_kp2ds_for_aa``), so an absent small toe would halve the foot point's position and score. Sources that
    have the small toe (DWPose, RTMW) are unchanged. ``"absent"`` keeps it at (0, 0, 0).
    """
    if small_toe not in SMALL_TOE:
        raise InputError(f"small_toe must be one of {', '.join(SMALL_TOE)}, got '{small_toe}'")
    whole = to_wholebody(seq, joint_correction=joint_correction)
    if not 0 <= person < whole.num_persons:
        raise InputError(f"person {person} is not in the sequence ({whole.num_persons} person slots)")
    kp = whole.keypoints[:, person].astype(np.float64)
    if small_toe == "big-toe":
        for big, small in ((17, 18), (20, 21)):
            fill = (kp[:, small, 2] <= 0) & (kp[:, big, 2] > 0)
            kp[fill, small] = kp[fill, big]
    kp[kp[..., 2] <= 0] = 0.0
    return kp


def part_presence(seq: KeypointSequence, person: int = 0) -> dict[str, int]:
    """Frames in which each part of one person has at least one point with a score above 0 (``num_frames`` too)."""
    kp = to_wholebody(seq, joint_correction=False).keypoints[:, person]
    counts = {part: int((kp[:, list(idx), 2] > 0).any(axis=1).sum()) for part, idx in WHOLEBODY_PARTS.items()}
    return {"num_frames": len(kp), **counts}
