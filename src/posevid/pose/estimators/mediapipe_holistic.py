"""Whole-body estimator: MediaPipe Holistic (legacy ``solutions.holistic``), fully offline.

Why Holistic: its body (BlazePose full, the same landmark model as the ``mediapipe`` estimator), face mesh and
hand models all ship inside the mediapipe wheel, so body, face and hands come without any download
(``model_complexity=1`` only; 0 and 2 would download their body model). One person per frame.

Output layout ``holistic143`` (:mod:`posevid.pose.formats`): the 33 BlazePose landmarks (score = visibility),
then 68 face points and the person's left and right hand (21 points each) in COCO-WholeBody's orders. Keeping
the 33 landmarks lets the fitted BlazePose -> COCO joint correction run on the body later, exactly as for
``posevid pose``; ``to_format("wholebody133")`` or :func:`posevid.pose.mmpose_fit.correct_sequence` give
COCO-WholeBody-133.

* **Face**: 68 of the 468 mesh points by :data:`FACE68_FROM_MESH468`, one mesh vertex per iBUG-68 point.
* **Hands**: MediaPipe's 21-point hand order is COCO-WholeBody's. Holistic's ``left_hand_landmarks`` is the
  *person's* left hand (its region comes from the body's left wrist), which is COCO-WholeBody's left hand; checked
  on the Charades clips: the hand's wrist lies a median 0.6-2.1 % of the frame height from the body's same-side
  wrist and 7-31 % from the other one.
* **Scores**: the legacy API gives no per-point confidence for face and hands, so a found face or hand has score 1
  on every point; a face or hand that is not found is absent (0, 0, 0), never guessed.
* **Hand gate**: now and then the hand model returns a hand that is not there, on isolated frames (points
  scattered over a bag, the clothes or a sink). A hand is dropped (absent) when its wrist lies farther than
  ``hand_gate`` torso lengths (mid-shoulders to mid-hips) from the body's same-side wrist. On the four shared
  Charades clips real hands sit at a median 0.03-0.08 torso; 9 of the 1406 hands found (0.6 %) lie beyond 0.2,
  mostly such ghosts, the rest real hands whose wrist the hand model put 0.2-0.25 torso off. ``hand_gate=None``
  keeps every hand.
"""

from __future__ import annotations

import numpy as np

from posevid.pose.estimators.mediapipe_pose import MediaPipePose, landmarks_to_array

# MediaPipe face-mesh vertex for each iBUG-68 point (jaw 0-16 from the person's right, brows 17-26, nose 27-35,
# eyes 36-47, lips 48-67). The published correspondence of ByteDance's LatentSync (Apache-2.0),
# ``latentsync/utils/image_processor.py``, ``landmark_points_68`` (its ``mediapipe_lm478_to_face_alignment_lm68``);
# the same list is in wide use for mesh -> dlib/face-alignment 68 points. Checked on Charades frames
# (tests/test_pose_wholebody_charades.py): jaw from image-left to image-right on frontal faces, right eye left of
# the left eye, the nose tip between and below the eyes, the mouth below the nose.
FACE68_FROM_MESH468: tuple[int, ...] = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,  # jaw
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,  # right brow, left brow
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose bridge, nose base
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # right eye, left eye
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
)  # fmt: skip
HAND_GATE = 0.2  # torso lengths between a hand's wrist and the body's wrist beyond which the hand is dropped
_WRIST = {"left": 15, "right": 16}  # BlazePose-33 wrists
_NUM = 33 + 68 + 21 + 21


class MediaPipeHolistic(MediaPipePose):
    name = "mediapipe-holistic"
    keypoint_format = "holistic143"
    _graph = ("holistic", "Holistic")

    def __init__(self, *, hand_gate: float | None = HAND_GATE, **options) -> None:
        super().__init__(**options)
        self.hand_gate = hand_gate

    def _people(self, result, width: int, height: int) -> np.ndarray:
        if result.pose_landmarks is None:  # Holistic finds face and hands from the body: no body, nobody
            return np.zeros((0, _NUM, 3), np.float32)
        out = np.zeros((_NUM, 3), np.float32)
        body = landmarks_to_array(result.pose_landmarks, width, height)
        out[:33] = body
        if result.face_landmarks is not None:
            mesh = landmarks_to_array(result.face_landmarks, width, height, score=1.0)
            out[33:101] = mesh[list(FACE68_FROM_MESH468)]
        for start, side, hand in ((101, "left", result.left_hand_landmarks), (122, "right", result.right_hand_landmarks)):
            if hand is not None:
                points = landmarks_to_array(hand, width, height, score=1.0)
                if self._attached(points, body, side):
                    out[start : start + 21] = points
        return out[None]

    def _attached(self, hand: np.ndarray, body: np.ndarray, side: str) -> bool:
        """Whether the hand's wrist is within ``hand_gate`` torso lengths of the body's same-side wrist."""
        if self.hand_gate is None:
            return True
        torso = np.hypot(*((body[11, :2] + body[12, :2]) / 2 - (body[23, :2] + body[24, :2]) / 2))
        gap = np.hypot(*(hand[0, :2] - body[_WRIST[side], :2]))
        return bool(gap <= self.hand_gate * torso)
