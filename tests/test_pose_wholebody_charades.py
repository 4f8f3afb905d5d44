"""Whole-body sanity on real frames: 40-frame excerpts of the four shared Charades clips (``fixtures/pose/wholebody``).

* each hand sits on the body's same-side wrist (a swapped labelling fails the same check);
* the shares of frames with a face and with each hand are printed and bounded from below;
* face-68 points lie on the face in iBUG order (a shuffled index map fails the same checks);
* Holistic's body agrees with ``posevid pose``'s (the same BlazePose full model).

The clips and their sizes come from the fixture's ``meta.json``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from posevid.pose import extract_keypoints
from posevid.pose.mmpose_fit import correct_sequence
from posevid.pose.wholebody import extract_wholebody, part_presence, wholebody_keypoints

WRIST_TOLERANCE = 0.05  # of the frame height (issue 21)
# Lower bounds on the share of frames with a face / left hand / right hand, set from the measured shares with margin
# (measured 2026-12-07 on these excerpts, zero-phase smoothing; the excerpts were chosen for their faces and hands,
# so these shares are higher than over the whole clips, see docs/pose.md). 0_20, a game character seen from above
# and behind, shows no face.
MIN_SHARE = {  # clip: (face, left hand, right hand)   measured:
    "0RJKT": (0.90, 0.90, 0.90),  # 1.000, 1.000, 1.000
    "0_20": (0.00, 0.15, 0.00),  # 0.000, 0.275, 0.025
    "3IPI3": (0.30, 0.50, 0.45),  # 0.450, 0.675, 0.625
    "5D3X6": (0.45, 0.00, 0.35),  # 0.650, 0.025, 0.500
}
BODY_TOLERANCE_PX = 0.5  # Holistic vs posevid pose body joints; measured 0.00 px (the same landmark model and tracking)


@pytest.fixture(scope="module")
def clips(pose_dir) -> dict:
    folder = pose_dir / "wholebody"
    meta = json.loads((folder / "meta.json").read_text())
    return {name: dict(info, path=folder / info["source"]) for name, info in meta["clips"].items()}


@pytest.fixture(scope="module")
def wholebody(clips) -> dict:
    """Whole-body tracks of the excerpts (MediaPipe Holistic, zero-phase smoothing as posevid pose)."""
    return {name: extract_wholebody(c["path"], smoothing="zero-phase", progress=False, workers=1) for name, c in clips.items()}


def _wrist_gaps(kp: np.ndarray, height: int) -> dict[str, np.ndarray]:
    """Per hand: distance of the hand's wrist to the body's same-side wrist / frame height, in frames where both are found."""
    gaps = {}
    for side, body_wrist, hand_wrist in (("left", 9, 91), ("right", 10, 112)):
        both = (kp[:, body_wrist, 2] > 0) & (kp[:, hand_wrist, 2] > 0)
        gaps[side] = np.hypot(*(kp[both, body_wrist, :2] - kp[both, hand_wrist, :2]).T) / height
    return gaps


def _swap_hands(kp: np.ndarray) -> np.ndarray:
    out = kp.copy()
    out[:, 91:112], out[:, 112:133] = kp[:, 112:133], kp[:, 91:112]
    return out


def test_hands_sit_on_the_same_side_wrist_and_faces_and_hands_are_found(clips, wholebody):
    swapped_fails = 0
    print("\nclip    frames  face   left hand  right hand  max wrist gap L / R (frame heights)")
    for name, seq in wholebody.items():
        assert (seq.width, seq.height) == tuple(clips[name]["size"]) and len(seq) == clips[name]["frames"]
        kp = wholebody_keypoints(seq)  # what Wan reads: the joint-corrected body, smoothed
        gaps = _wrist_gaps(kp, seq.height)
        parts = part_presence(seq)
        shares = [parts[p] / parts["num_frames"] for p in ("face", "left_hand", "right_hand")]
        worst = [f"{g.max():.3f}" if len(g) else "-" for g in gaps.values()]
        print(f"{name:7s} {len(seq):6d}  {shares[0]:.3f}  {shares[1]:.3f}      {shares[2]:.3f}       {worst[0]} / {worst[1]}")
        for side, g in gaps.items():
            assert (g <= WRIST_TOLERANCE).all(), f"{name} {side} hand off its wrist by {g.max():.3f} of the frame height"
        for part, share, bound in zip(("face", "left hand", "right hand"), shares, MIN_SHARE[name], strict=True):
            assert share >= bound, f"{name}: {part} in {share:.3f} of the frames, expected >= {bound}"
        swapped = _wrist_gaps(_swap_hands(kp), seq.height)
        swapped_fails += any((g > WRIST_TOLERANCE).any() for g in swapped.values())
    # negative control: with the hands' sides swapped the same check fails wherever both hands are seen
    assert swapped_fails >= 2


def _ibug_order_holds(face: np.ndarray) -> bool:
    """Sanity of one upright face of 68 (x, y) points in iBUG order, facing the camera more or less."""
    right_eye, left_eye = face[36:42].mean(axis=0), face[42:48].mean(axis=0)
    eyes_y, mouth = (right_eye[1] + left_eye[1]) / 2, face[48:68].mean(axis=0)
    return bool(
        face[0, 0] < face[8, 0] < face[16, 0]  # jaw from image-left (the person's right) to image-right
        and right_eye[0] < left_eye[0]
        and face[36, 0] < face[30, 0] < face[45, 0]  # nose tip between the eyes' outer corners
        and eyes_y < face[30, 1] < mouth[1] < face[8, 1]  # eyes, nose tip, mouth, chin from top to bottom
        and face[17:22, 1].mean() < right_eye[1]
        and face[22:27, 1].mean() < left_eye[1]  # brows above the eyes
        and face[36, 0] < face[39, 0] < face[42, 0] < face[45, 0]  # eye corners left to right
        and face[48, 0] < face[54, 0]
        and face[51, 1] < face[57, 1]  # mouth corners; upper lip above the lower lip
    )


def test_face68_points_lie_on_the_face_in_ibug_order(clips, wholebody):
    """Checked on the full 468-point mesh of the frames with a face (static-image Holistic), so a shuffled map can be tried."""
    from posevid.pose.estimators.mediapipe_holistic import FACE68_FROM_MESH468
    from posevid.pose.estimators.mediapipe_pose import import_mediapipe, landmarks_to_array
    from posevid.video import iter_frames

    mp = import_mediapipe()
    meshes, noses = [], []
    with mp.solutions.holistic.Holistic(static_image_mode=True, model_complexity=1) as holistic:
        for name, seq in wholebody.items():
            with_face = np.flatnonzero(seq.keypoints[:, 0, 33:101, 2].max(axis=1) > 0)
            if len(with_face) == 0:
                continue
            for frame in iter_frames(clips[name]["path"], indices=with_face[:: max(1, len(with_face) // 6)].tolist()):
                result = holistic.process(np.ascontiguousarray(frame))
                if result.face_landmarks is not None and result.pose_landmarks is not None:
                    h, w = frame.shape[:2]
                    meshes.append(landmarks_to_array(result.face_landmarks, w, h)[:, :2])
                    noses.append(landmarks_to_array(result.pose_landmarks, w, h)[0, :2])
    assert len(meshes) >= 12
    index = np.array(FACE68_FROM_MESH468)
    for mesh, nose in zip(meshes, noses, strict=True):
        face = mesh[index]
        lo, hi = face.min(axis=0), face.max(axis=0)
        assert (face >= mesh.min(axis=0)).all() and (face <= mesh.max(axis=0)).all()
        assert (lo <= nose).all() and (nose <= hi).all()  # the body's nose lies inside the 68 points' box
    passed = np.mean([_ibug_order_holds(mesh[index]) for mesh in meshes])
    rng = np.random.default_rng(0)
    shuffled = [np.mean([_ibug_order_holds(mesh[rng.permutation(index)]) for mesh in meshes]) for _ in range(5)]
    print(f"\niBUG order holds on {passed:.2f} of {len(meshes)} faces; with shuffled maps on {', '.join(f'{s:.2f}' for s in shuffled)}")
    assert passed >= 0.8  # measured 0.94 (16 of 17 faces; the miss: a small face turned away, nose tip past an eye corner)
    assert max(shuffled) <= 0.1  # measured 0.00


def test_holistic_body_agrees_with_posevid_pose_body(clips, wholebody):
    """The body of the whole-body track equals that of ``posevid pose``'s estimator on the same frames (same settings)."""
    print("\nclip    max |holistic - pose| px: landmarks (visible)  corrected COCO-17")
    for name, seq in wholebody.items():
        body = extract_keypoints(clips[name]["path"], smoothing="zero-phase", progress=False, workers=1)
        a, b = seq.keypoints[:, 0, :33], body.keypoints[:, 0]
        assert body.format == "blazepose33" and a.shape == b.shape
        visible = (a[..., 2] > 0.5) & (b[..., 2] > 0.5)
        landmarks = np.hypot(*(a[..., :2] - b[..., :2])[visible].T)
        coco_a, coco_b = correct_sequence(seq).keypoints[:, 0, :17], correct_sequence(body).keypoints[:, 0]
        coco = np.abs(coco_a - coco_b).max()
        print(f"{name:7s} {landmarks.max():.4f} ({visible.mean():.2f} visible)  {coco:.4f}")
        assert visible.mean() > 0.5 and landmarks.max() <= BODY_TOLERANCE_PX
        assert coco <= BODY_TOLERANCE_PX
