"""Whole-body keypoints (issue 21, part 1): the COCO-WholeBody-133 layout, its files, clean-up and retargeting of
hands and face, the Holistic assembly, DWPose/RTMW's 133 joints, and ``posevid pose --wholebody``.

Real-frame checks (hands on the right wrist, face-68 order, agreement with ``posevid pose``) are in
``test_pose_wholebody_charades.py``.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from posevid.errors import CheckpointError, InputError
from posevid.pose import KeypointSequence, convert, extract_keypoints_from_frames, get_estimator, reference_pose, retarget, select_persons
from posevid.pose.cleanup import smooth, smooth_zero_phase
from posevid.pose.estimators import EstimatorBase
from posevid.pose.formats import BLAZE33_TO_COCO17, BLAZEPOSE33, COCO17, HOLISTIC143, LINKS, WHOLEBODY133, WHOLEBODY_PARTS
from posevid.pose.wholebody import part_presence, to_wholebody, wholebody_estimator, wholebody_keypoints

LEFT_HAND, RIGHT_HAND, FACE = (list(WHOLEBODY_PARTS[p]) for p in ("left_hand", "right_hand", "face"))


def _random(rng, shape, k) -> np.ndarray:
    kp = rng.uniform(0, 500, size=shape + (k, 3)).astype(np.float32)
    kp[..., 2] = rng.uniform(0.1, 1.0, size=shape + (k,))
    return kp


# --- layout and conversions -------------------------------------------------------------------------------------------


def test_wholebody_layout_is_the_coco_wholebody_order():
    assert len(WHOLEBODY133) == 133 == len(set(WHOLEBODY133)) and WHOLEBODY133[:17] == COCO17
    assert WHOLEBODY133[17:23] == ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
    assert (WHOLEBODY133[23], WHOLEBODY133[90]) == ("face_0", "face_67")
    assert (WHOLEBODY133[91], WHOLEBODY133[95], WHOLEBODY133[111]) == ("left_hand_wrist", "left_hand_thumb_tip", "left_hand_pinky_tip")
    assert (WHOLEBODY133[112], WHOLEBODY133[132]) == ("right_hand_wrist", "right_hand_pinky_tip")
    assert [(r.start, r.stop) for r in WHOLEBODY_PARTS.values()] == [(0, 17), (17, 23), (23, 91), (91, 112), (112, 133)]
    assert HOLISTIC143[:33] == BLAZEPOSE33 and HOLISTIC143[33:] == WHOLEBODY133[23:] and len(HOLISTIC143) == 143
    for fmt in ("wholebody133", "holistic143"):
        children = [b for a, b in LINKS[fmt]]
        assert len(children) == len(set(LINKS[fmt])) and all(0 <= a < len(HOLISTIC143) for link in LINKS[fmt] for a in link)
    hand = [(a - 91, b - 91) for a, b in LINKS["wholebody133"] if 91 <= a < 112]
    assert len(hand) == 20 and sorted(b for _, b in hand) == list(range(1, 21))  # a tree: every point but the wrist has one parent
    assert {a for a, _ in hand} == {0, 1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19}


def test_holistic_to_wholebody_copies_body_feet_face_hands_and_leaves_small_toes_absent():
    rng = np.random.default_rng(0)
    hol = _random(rng, (2,), 143)
    wb = convert(hol, "holistic143", "wholebody133")
    np.testing.assert_array_equal(wb[:, :17], hol[:, list(BLAZE33_TO_COCO17)])  # the same-named landmarks
    for coco, blaze in ((17, 31), (19, 29), (20, 32), (22, 30)):  # big toe = foot index, heel = heel
        np.testing.assert_array_equal(wb[:, coco], hol[:, blaze])
    assert not wb[:, [18, 21]].any()  # MediaPipe has no small toe: absent
    np.testing.assert_array_equal(wb[:, 23:], hol[:, 33:])  # face and hands in the same order
    back = convert(wb, "wholebody133", "holistic143")
    np.testing.assert_array_equal(back[:, 33:], hol[:, 33:])
    np.testing.assert_array_equal(back[:, [31, 29]], hol[:, [31, 29]])
    assert not back[:, BLAZEPOSE33.index("left_eye_inner")].any()  # COCO-WholeBody has no eye corners of BlazePose's
    np.testing.assert_array_equal(convert(wb, "wholebody133", "coco17"), wb[:, :17])
    op = convert(wb, "wholebody133", "openpose18")
    np.testing.assert_allclose(op[:, 1, :2], (wb[:, 5, :2] + wb[:, 6, :2]) / 2, rtol=1e-6)
    from_body = convert(wb[:, :17], "coco17", "wholebody133")
    np.testing.assert_array_equal(from_body[:, :17], wb[:, :17])
    assert not from_body[:, 17:].any()


# --- files ------------------------------------------------------------------------------------------------------------


def test_body_only_files_written_before_still_load(pose_dir):
    """keypoints.json / .npz written by ``posevid pose --npz --max-frames 4`` at main 3f7503e, before whole-body layouts."""
    as_json = KeypointSequence.load(pose_dir / "body_keypoints_3f7503e.json")
    as_npz = KeypointSequence.load(pose_dir / "body_keypoints_3f7503e.npz")
    for seq in (as_json, as_npz):
        assert (seq.format, seq.keypoints.shape, seq.width, seq.height) == ("coco17", (4, 1, 17, 3), 406, 720)
        assert seq.meta["estimator"] == "mediapipe" and seq.keypoints[..., 2].min() > 0
    np.testing.assert_allclose(as_json.keypoints, as_npz.keypoints, atol=0.006)
    kp = wholebody_keypoints(as_npz)
    assert kp.shape == (4, 133, 3) and kp.dtype == np.float64
    np.testing.assert_array_equal(kp[:, :17], as_npz.keypoints[:, 0])
    assert not kp[:, 17:].any()  # feet, face and hands are absent: (0, 0, 0)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
@pytest.mark.parametrize("fmt", ["wholebody133", "holistic143"])
def test_wholebody_files_round_trip(tmp_path, suffix, fmt):
    rng = np.random.default_rng(1)
    kp = _random(rng, (3, 1), len(HOLISTIC143 if fmt == "holistic143" else WHOLEBODY133))
    kp[1, 0, -42:] = 0  # no hands in frame 1
    seq = KeypointSequence(kp, fmt, 640, 368, 25.0, "clip.mp4", np.array([0, 1, 2]), {"estimator": "mediapipe-holistic"})
    path = seq.save(tmp_path / f"k{suffix}")
    back = KeypointSequence.load(path)
    assert (back.format, back.keypoints.shape, back.meta) == (fmt, kp.shape, {"estimator": "mediapipe-holistic"})
    np.testing.assert_allclose(back.keypoints, kp, atol=0 if suffix == ".npz" else 0.006)
    assert not back.keypoints[1, 0, -42:].any()
    if suffix == ".json":
        assert json.loads(path.read_text())["format"] == fmt


# --- the array Wan reads ------------------------------------------------------------------------------------------------


def test_wholebody_keypoints_is_wans_array():
    rng = np.random.default_rng(2)
    hol = _random(rng, (2, 1), 143)
    hol[0, 0, 101:122, 2] = 0  # left hand not found in frame 0 (coordinates left over by clean-up)
    seq = KeypointSequence(hol, "holistic143", 100, 200, 25.0)
    kp = wholebody_keypoints(seq)
    assert kp.shape == (2, 133, 3) and kp.dtype == np.float64
    assert not kp[0, LEFT_HAND].any() and kp[1, LEFT_HAND, 2].min() > 0  # exactly (0, 0, 0) when absent
    np.testing.assert_array_equal(kp[:, 18], kp[:, 17])  # small toe = big toe, so Wan's toe mean is the foot index
    assert not wholebody_keypoints(seq, small_toe="absent")[:, [18, 21]].any()
    corrected = to_wholebody(seq)
    np.testing.assert_array_equal(kp[:, :17], corrected.keypoints[:, 0, :17])  # the joint-corrected body by default
    assert not np.allclose(kp[:, :17, :2], convert(hol[:, 0], "holistic143", "coco17")[..., :2])
    np.testing.assert_allclose(wholebody_keypoints(seq, joint_correction=False)[:, :17], convert(hol[:, 0], "holistic143", "coco17"))
    with pytest.raises(InputError, match="person 1"):
        wholebody_keypoints(seq, person=1)
    assert part_presence(seq) == {"num_frames": 2, "body": 2, "feet": 2, "face": 2, "left_hand": 1, "right_hand": 2}


# --- clean-up ---------------------------------------------------------------------------------------------------------

GAP = slice(15, 25)  # frames without the left hand


def _hand_track(T: int = 40, seed: int = 3) -> np.ndarray:
    """(T, 1, 133, 3): a still person with jittery points; the left hand absent in GAP, the right hand never found."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(100, 300, size=(133, 2))
    kp = np.zeros((T, 1, 133, 3), np.float32)
    kp[:, 0, :, :2] = base + rng.normal(0, 2.0, size=(T, 133, 2))
    kp[:, 0, :, 2] = 0.9
    kp[GAP, 0, 91:112] = 0
    kp[:, 0, RIGHT_HAND] = 0
    return kp


def _ghost_frames(kp: np.ndarray) -> list[int]:
    """Frames where a hand that was not found has any score or coordinate (a hand guessed into the gap)."""
    left = np.flatnonzero(kp[GAP, 0][:, LEFT_HAND].any(axis=(1, 2))) + GAP.start
    right = np.flatnonzero(kp[:, 0, RIGHT_HAND].any(axis=(1, 2)))
    return sorted(set(left.tolist()) | set(right.tolist()))


def _interpolate_gaps(kp: np.ndarray) -> np.ndarray:
    """Negative control: a smoother that bridges gaps per point (what must not happen)."""
    out = kp.copy()
    t = np.arange(len(kp))
    for j in range(kp.shape[2]):
        seen = kp[:, 0, j, 2] > 0
        if seen.any() and not seen.all():
            for c in range(3):
                out[~seen, 0, j, c] = np.interp(t[~seen], t[seen], kp[seen, 0, j, c])
    return out


def _jitter(kp: np.ndarray) -> float:
    """Mean frame-to-frame motion of the left hand before the gap (the person stands still)."""
    return float(np.abs(np.diff(kp[: GAP.start, 0, 91:112, :2], axis=0)).mean())


@pytest.mark.parametrize("method", ["zero-phase", "one-euro"])
def test_smoothing_keeps_a_missing_hand_missing(method):
    kp = _hand_track()
    fps, height = 25.0, 400.0
    if method == "zero-phase":
        out = smooth_zero_phase(kp, fps, scale=height)
    else:
        out = smooth(kp, np.arange(len(kp)) / fps, scale=height)
    assert _ghost_frames(out) == []  # the gap and the never-found hand stay (0, 0, 0)
    assert _jitter(out) < 0.8 * _jitter(kp)  # while the found points are smoothed
    assert _ghost_frames(_interpolate_gaps(kp)) == list(range(GAP.start, GAP.stop))  # the check catches a bridging smoother


class _Replay(EstimatorBase):
    """Returns prepared per-frame detections in call order."""

    name = "replay"
    keypoint_format = "wholebody133"

    def __init__(self, detections):
        self.detections, self.i = detections, 0

    def reset(self):
        self.i = 0

    def __call__(self, rgb_frame):
        out = self.detections[self.i]
        self.i += 1
        return out


def test_extraction_clean_up_never_guesses_a_hand():
    """Through extract_keypoints_from_frames: smoothing plus gap filling of frames where nobody was found.

    Frame 24 (nobody; the hand is absent on one side) is filled with the hand absent; frame 30 (nobody; the hand is
    found on both sides) is filled like the rest of the person, counted in ``filled_frames``.
    """
    kp = _hand_track()
    detections = [kp[t] for t in range(len(kp))]
    detections[24] = detections[30] = np.zeros((0, 133, 3), np.float32)
    frames = [np.zeros((48, 64, 3), np.uint8)] * len(kp)
    for smoothing in ("zero-phase", True, False):
        seq = extract_keypoints_from_frames(frames, 64, 48, estimator=_Replay(detections), fps=25.0, smoothing=smoothing)
        assert seq.keypoints[GAP, 0, 91:112, 2].max() == 0 and seq.keypoints[:, 0, RIGHT_HAND, 2].max() == 0, smoothing
        out = wholebody_keypoints(seq)[:, None]
        assert _ghost_frames(out) == [], smoothing
        assert seq.meta["filled_frames"] == 2 and out[30, 0, LEFT_HAND, 2].min() > 0


def test_person_choice_keeps_each_persons_hands_and_face():
    rng = np.random.default_rng(4)
    big, small = _random(rng, (), 133), _random(rng, (), 133)
    big[:, :2] = big[:, :2] * 0.6 + [0, 0]  # spread over 300x300 px
    small[:, :2] = small[:, :2] * 0.1 + [400, 400]  # 50x50 px elsewhere
    out = select_persons([np.stack([small, big]), np.stack([big, small])], mode="largest", width=500, height=500, num_keypoints=133)
    np.testing.assert_array_equal(out[:, 0], np.stack([big, big]))  # body, face and hands of the same person


# --- retargeting ------------------------------------------------------------------------------------------------------


def _person() -> np.ndarray:
    """A COCO-WholeBody person: body from a fixed pose, every part placed around its parent joint; no right hand."""
    body = np.array([
        [200, 80], [210, 70], [190, 70], [220, 75], [180, 75], [240, 130], [160, 130], [260, 190], [140, 190],
        [270, 250], [130, 250], [225, 260], [175, 260], [228, 350], [172, 350], [230, 440], [170, 440],
    ], np.float32)  # fmt: skip
    kp = np.zeros((133, 3), np.float32)
    kp[:17, :2], kp[:, 2] = body, 1.0
    rng = np.random.default_rng(5)
    for part, parent in (("feet", None), ("face", 0), ("left_hand", 9)):
        idx = list(WHOLEBODY_PARTS[part])
        anchor = body[parent] if parent is not None else body[[15, 15, 15, 16, 16, 16]]
        kp[idx, :2] = anchor + rng.uniform(-15, 15, size=(len(idx), 2))
    kp[RIGHT_HAND] = 0
    return kp


def test_retarget_moves_hands_face_and_feet_with_their_parent_joint():
    drv = _person()
    seq = KeypointSequence(np.stack([drv, drv])[:, None], "wholebody133", 400, 500, 25.0)
    # a reference twice as big: every bone ratio is 2, so the whole person (parts included) scales by 2 about the root
    ref = drv[:17].copy()
    ref[:, :2] = ref[:, :2] * 2 + [10, 20]
    out = retarget(seq, ref, size=(800, 1000))
    assert out.format == "wholebody133" and out.keypoints.shape == (2, 1, 133, 3)
    present = drv[:, 2] > 0
    np.testing.assert_allclose(out.keypoints[0, 0, present, :2], drv[present, :2] * 2 + [10, 20], atol=1e-3)
    assert not out.keypoints[:, 0, RIGHT_HAND].any()  # an absent hand stays absent
    # longer reference forearms (x3) with the same torso: the left hand follows the new wrist, scaled by the forearm ratio
    ref = drv[:17].copy()
    ref[9, :2] = ref[7, :2] + 3 * (ref[9, :2] - ref[7, :2])
    out = retarget(seq, ref, size=(400, 500)).keypoints[0, 0]
    hand = out[LEFT_HAND, :2] - out[9, :2]
    np.testing.assert_allclose(hand, 3 * (drv[LEFT_HAND, :2] - drv[9, :2]), atol=1e-3)
    np.testing.assert_allclose(out[FACE, :2] - out[0, :2], drv[FACE, :2] - drv[0, :2], atol=1e-3)  # head unchanged: face too
    lin = retarget(seq, drv[:17] * [2, 2, 1] + [5, 7, 0], size=(800, 1000), method="linear").keypoints[0, 0]
    np.testing.assert_allclose(lin[present, :2], drv[present, :2] * 2 + [5, 7], atol=1e-3)


def test_reference_pose_wholebody_for_wans_reference_image(examples_dir, pose_dir):
    kp, size = reference_pose(examples_dir / "key_frame.png", wholebody=True)  # the DreamPose key frame: a woman facing us
    assert kp.shape == (133, 3) and kp.dtype == np.float64 and size == (576, 720)
    assert (kp[FACE, 2] > 0).all() and (kp[LEFT_HAND, 2] > 0).all() and (kp[RIGHT_HAND, 2] > 0).all()
    for body_wrist, hand_wrist in ((9, 91), (10, 112)):
        assert np.hypot(*(kp[body_wrist, :2] - kp[hand_wrist, :2])) < 0.05 * size[1]
    body, _ = reference_pose(examples_dir / "key_frame.png")
    assert body.shape == (17, 3) and np.abs(body[:, :2] - kp[:17, :2]).max() < 0.05 * size[1]
    from_file, size = reference_pose(pose_dir / "body_keypoints_3f7503e.npz", wholebody=True)
    assert from_file.shape == (133, 3) and size == (406, 720) and not from_file[17:].any()


# --- estimators -------------------------------------------------------------------------------------------------------


def _landmarks(points: np.ndarray, visibility: float = 0.9):
    return SimpleNamespace(landmark=[SimpleNamespace(x=float(x), y=float(y), visibility=visibility) for x, y in points])


def test_holistic_assembly_face_map_hand_sides_and_gate():
    from posevid.pose.estimators.mediapipe_holistic import FACE68_FROM_MESH468, MediaPipeHolistic

    assert len(FACE68_FROM_MESH468) == 68 == len(set(FACE68_FROM_MESH468)) and max(FACE68_FROM_MESH468) < 468
    rng = np.random.default_rng(6)
    body = rng.uniform(0.2, 0.8, size=(33, 2))
    body[[11, 12, 23, 24]] = [[0.4, 0.3], [0.6, 0.3], [0.4, 0.6], [0.6, 0.6]]  # torso 0.3 of the frame
    mesh = rng.uniform(0.3, 0.4, size=(468, 2))
    left = body[15] + rng.uniform(-0.02, 0.02, size=(21, 2))
    right = body[16] + rng.uniform(-0.02, 0.02, size=(21, 2))
    w, h = 200, 100
    result = SimpleNamespace(pose_landmarks=_landmarks(body), face_landmarks=_landmarks(mesh, 0.0),
                             left_hand_landmarks=_landmarks(left, 0.0), right_hand_landmarks=_landmarks(right, 0.0))  # fmt: skip
    est = MediaPipeHolistic()
    kp = est._people(result, w, h)
    assert kp.shape == (1, 143, 3) and est.keypoint_format == "holistic143"
    np.testing.assert_allclose(kp[0, :33, :2], body * [w, h], rtol=1e-6)
    np.testing.assert_allclose(kp[0, 33:101, :2], mesh[list(FACE68_FROM_MESH468)] * [w, h], rtol=1e-6)
    np.testing.assert_allclose(kp[0, 101:122, :2], left * [w, h], rtol=1e-6)  # Holistic's left hand = the person's left
    np.testing.assert_allclose(kp[0, 122:143, :2], right * [w, h], rtol=1e-6)
    assert (kp[0, 33:, 2] == 1).all() and np.allclose(kp[0, :33, 2], 0.9)
    # a hand far from its wrist (0.25 of the frame = 0.83 torso) is dropped; without the gate it is kept
    far = SimpleNamespace(**{**vars(result), "right_hand_landmarks": _landmarks(right + [0.0, 0.25], 0.0), "face_landmarks": None})
    kp = est._people(far, w, h)
    assert not kp[0, 122:].any() and not kp[0, 33:101].any() and kp[0, 101:122, 2].min() == 1
    assert MediaPipeHolistic(hand_gate=None)._people(far, w, h)[0, 122:, 2].min() == 1
    nobody = SimpleNamespace(pose_landmarks=None, face_landmarks=None, left_hand_landmarks=None, right_hand_landmarks=None)
    assert est._people(nobody, w, h).shape == (0, 143, 3)


def test_wholebody_estimator_names():
    assert wholebody_estimator("mediapipe") == ("mediapipe-holistic", {})
    assert wholebody_estimator("dwpose", {"det_model": "d.onnx"}) == ("dwpose", {"det_model": "d.onnx", "keypoints": "wholebody"})
    assert wholebody_estimator("rtmpose")[1] == {"keypoints": "wholebody"}
    assert wholebody_estimator("mediapipe-holistic") == ("mediapipe-holistic", {})


def test_dwpose_rtmw_onnx_keeps_all_133_joints(tiny_rtmpose_models, tiny_wholebody_pose_model):
    det, body_model = tiny_rtmpose_models
    frame = np.zeros((128, 128, 3), np.uint8)
    name, opts = wholebody_estimator("dwpose")
    with get_estimator(name, det_model=det, pose_model=tiny_wholebody_pose_model, **opts) as est:
        assert est.keypoint_format == "wholebody133"
        people = est(frame)
    assert people.shape == (1, 133, 3)
    # the detector's box (24, 40, 88, 104) padded x1.25 to the 24:32 aspect: 80 x 106.67 px around (56, 72)
    k = np.arange(133)
    np.testing.assert_allclose(people[0, :, 0], (k % 22 + 0.5) / 24 * 80 + 56 - 40, atol=1e-3)
    np.testing.assert_allclose(people[0, :, 1], (k % 30) / 32 * (80 * 32 / 24) + 72 - 80 * 32 / 24 / 2, atol=1e-3)
    np.testing.assert_allclose(people[0, :, 2], np.where(k % 2, 0.8, 0.2), atol=1e-6)
    with get_estimator("dwpose", det_model=det, pose_model=tiny_wholebody_pose_model) as est:  # body: the first 17 joints
        np.testing.assert_array_equal(est(frame), people[:, :17])
    with pytest.raises(CheckpointError, match="gives 17 joints, wholebody133 needs 133") as err:
        get_estimator("rtmpose", det_model=det, pose_model=body_model, keypoints="wholebody")
    assert "\n" not in str(err.value) and "RTMW" in str(err.value)
    with pytest.raises(InputError, match="keypoints must be one of"):
        get_estimator("rtmpose", det_model=det, pose_model=body_model, keypoints="hands")


# --- posevid pose --wholebody -----------------------------------------------------------------------------------------


def test_pose_command_wholebody(tmp_path, charades_cut, capsys):
    from posevid.cli import main

    out = tmp_path / "wb"
    assert main(["pose", str(charades_cut), "--out", str(out), "--wholebody", "--max-frames", "6", "--npz"]) == 0
    printed = capsys.readouterr().out
    assert "face in 0.0%, left hand in" in printed and "right hand in" in printed
    seq = KeypointSequence.load(out / "keypoints.npz")
    assert seq.format == "wholebody133" and seq.keypoints.shape == (6, 1, 133, 3) and seq.meta["estimator"] == "mediapipe-holistic"
    assert seq.meta["joint_correction"] == "mmpose_fit.json"  # the body is drawn and saved like posevid pose's
    record = json.loads((out / "pose.json").read_text())["settings"]
    assert record["wholebody"] is True and record["format"] == "wholebody133" and record["parts"]["num_frames"] == 6
    assert (out / "skeleton.mp4").is_file()
    # face and hands need --wholebody: one line, exit 2, nothing written
    assert main(["pose", str(charades_cut), "--out", str(tmp_path / "no"), "--format", "wholebody133", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs --wholebody" in err and len(err.splitlines()) == 1 and not (tmp_path / "no").exists()
