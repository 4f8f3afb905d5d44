"""Wan2.2-Animate preprocessing (posevid.wan) against the official code's outputs (``fixtures/wan_animate_pre*``).

Every case folder holds ``inputs.npz`` (frames, reference, whole-body keypoints, a stand-in person mask),
``outputs.npz`` (what Wan's functions returned on them) and ``meta.json``; sizes and counts come from those,
so any case made the same way (e.g. one where a hand is missing) runs through the same tests.

Criteria: drawn images equal the golden's uint8; resized images (face crops, the letterboxed pose video,
the letterboxed reference) within one level on at most 0.1 % of values, since cv2's resizes may take other
SIMD paths on another CPU; keypoints within 1e-9 (coordinates where the golden's score is above 0, scores
everywhere); boxes, masks and frame indices exact. Negative controls show that the comparisons catch a stick
width off by one, Wan's first (overridden) face-box definition and stretching instead of letterboxing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

import posevid.wan.draw as wan_draw
import posevid.wan.faces as wan_faces
from posevid.errors import InputError
from posevid.wan import (
    draw_pose_video,
    face_boxes,
    face_crops,
    frame_indices,
    grid_fill,
    letterbox_keypoints,
    metas_from_keypoints,
    padding_resize,
    person_masks,
    preprocess,
    replace_masks,
    resize_by_area,
    retarget_poses,
    target_frame_count,
)
from posevid.wan.masks import backgrounds, person_box

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p for p in FIXTURES.glob("wan_animate_pre*") if (p / "meta.json").is_file())
KEYPOINT_TOL = 1e-9
RESIZE_MAX_LEVEL, RESIZE_MAX_SHARE = 1, 0.001
# Selfie segmentation vs the golden's stand-in mask (convex hull of the confident body keypoints), per frame.
# Measured on wan_animate_pre (AMD EPYC, mediapipe 0.10.21): IoU 0.731-0.756, hull covered 0.837-0.866 (the
# hull misses the head top and the arms' outlines, which the segmentation has; it is a crude stand-in for SAM2).
SELFIE_MIN_IOU, SELFIE_MIN_HULL_COVER = 0.6, 0.75


@dataclass(repr=False)
class Case:
    name: str
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    meta: dict

    def __repr__(self) -> str:
        return f"Case({self.name})"

    @property
    def area(self) -> int:
        return int(np.prod(self.meta["area"]))

    @property
    def frame_hw(self) -> tuple[int, int]:
        return tuple(self.inputs["frames"].shape[1:3])

    @property
    def refer_hw(self) -> tuple[int, int]:
        return tuple(self.inputs["refer"].shape[:2])

    def metas(self):
        h, w = self.frame_hw
        return metas_from_keypoints(self.inputs["kp2ds"], w, h)

    def refer_metas(self):
        h, w = self.refer_hw
        return metas_from_keypoints(self.inputs["kp2ds_refer"], w, h)


@pytest.fixture(scope="module", params=CASES, ids=[p.name for p in CASES])
def case(request) -> Case:
    folder: Path = request.param
    with np.load(folder / "inputs.npz") as inputs, np.load(folder / "outputs.npz") as outputs:
        case = Case(folder.name, dict(inputs), dict(outputs), json.loads((folder / "meta.json").read_text()))
    assert case.meta["frames"] == len(case.inputs["frames"]) and list(case.frame_hw) == case.meta["frame_hw"]
    for name, shape in case.meta["outputs"].items():
        assert case.outputs[name].shape == tuple(shape), name
    return case


# ---- comparisons (one helper per kind; the negative controls must make them fail) ---------------------------


def assert_images_equal(ours: np.ndarray, golden: np.ndarray, name: str) -> None:
    assert ours.dtype == np.uint8 and ours.shape == golden.shape, f"{name}: {ours.shape} {ours.dtype} vs {golden.shape}"
    off = ours != golden
    assert not off.any(), f"{name}: {off.mean():.4%} of values differ (max {np.abs(ours.astype(int) - golden).max()} levels)"


def assert_resized_close(ours: np.ndarray, golden: np.ndarray, name: str) -> tuple[int, float]:
    """Within ``RESIZE_MAX_LEVEL`` everywhere and different on at most ``RESIZE_MAX_SHARE`` of the values."""
    assert ours.dtype == np.uint8 and ours.shape == golden.shape, f"{name}: {ours.shape} {ours.dtype} vs {golden.shape}"
    diff = np.abs(ours.astype(np.int16) - golden.astype(np.int16))
    worst, share = int(diff.max()), float((diff > 0).mean())
    assert worst <= RESIZE_MAX_LEVEL and share <= RESIZE_MAX_SHARE, f"{name}: max {worst} levels, {share:.4%} of values differ"
    return worst, share


def assert_keypoints_close(ours: np.ndarray, golden_xy: np.ndarray, golden_p: np.ndarray, name: str) -> float:
    """(..., 3) ours vs golden coordinates (..., 2) and scores (...): coordinates where the golden scores > 0."""
    assert ours.shape[:-1] == golden_p.shape, f"{name}: {ours.shape} vs {golden_p.shape}"
    assert np.abs(ours[..., 2] - golden_p).max() <= KEYPOINT_TOL, f"{name}: scores differ"
    scored = golden_p > 0
    worst = float(np.abs(ours[..., :2] - golden_xy)[scored].max()) if scored.any() else 0.0
    assert worst <= KEYPOINT_TOL, f"{name}: coordinates differ by up to {worst:.3g} px"
    return worst


# ---- frames ---------------------------------------------------------------------------------------------------


def test_frame_indices_match_wan(case: Case) -> None:
    for key, golden in case.outputs.items():
        if m := re.fullmatch(r"frame_indices_(\d+)_(\d+)_to_(\d+)_(\d+)", key):
            n, video_fps, target, fps = map(int, m.groups())
            np.testing.assert_array_equal(frame_indices(n, float(video_fps), target, fps), golden)


def test_target_frame_count_and_short_video() -> None:
    assert target_frame_count(300, 25.0, 30) == 360
    assert target_frame_count(300, 25.0, None) == 300
    with pytest.raises(InputError, match="shorter than one frame") as err:
        target_frame_count(1, 60.0, 30)
    assert "\n" not in str(err.value)


def test_reference_resize_by_area_and_letterbox(case: Case) -> None:
    assert_resized_close(resize_by_area(case.inputs["refer_raw"], case.area), case.inputs["refer"], "refer")
    h, w = case.frame_hw
    assert_resized_close(padding_resize(case.inputs["refer_raw"], h, w), case.outputs["refer_replace"], "refer_replace")


def test_letterbox_keypoints_follow_the_pixels(case: Case) -> None:
    """A dot drawn at a keypoint lands where the mapped keypoint says after ``resize_by_area``."""
    frame = case.inputs["frames"][0]
    same = letterbox_keypoints(case.inputs["kp2ds"], case.frame_hw, case.frame_hw)
    np.testing.assert_array_equal(same, case.inputs["kp2ds"])  # identity, bit for bit
    canvas = np.zeros((frame.shape[0] * 2 + 37, frame.shape[1] * 3, 3), np.uint8)  # wider: letterboxed
    point = np.array([[[canvas.shape[1] * 0.3, canvas.shape[0] * 0.6, 1.0]]])
    cv2.circle(canvas, (int(point[0, 0, 0]), int(point[0, 0, 1])), 20, (255, 255, 255), -1)
    small = resize_by_area(canvas, case.area)
    mapped = letterbox_keypoints(point, canvas.shape[:2], small.shape[:2])[0, 0]
    ys, xs = np.nonzero(small[..., 0] > 127)
    assert abs(xs.mean() - mapped[0]) < 1 and abs(ys.mean() - mapped[1]) < 1


def test_hand_colours_are_matplotlibs_hsv() -> None:
    """Wan passes ``matplotlib.colors.hsv_to_rgb([i / 20, 1, 1]) * 255`` to cv2; posevid computes it without matplotlib."""
    colors = pytest.importorskip("matplotlib.colors")
    for i, ours in enumerate(wan_draw.HAND_BONE_COLORS):
        assert ours == tuple(colors.hsv_to_rgb([i / 20.0, 1.0, 1.0]) * 255)


# ---- metas, faces, drawings -------------------------------------------------------------------------------------


def test_metas_match_wan(case: Case) -> None:
    metas = case.metas()
    for part in ("body", "left_hand", "right_hand", "face"):
        golden = case.outputs[f"metas.keypoints_{part}"]
        assert_keypoints_close(getattr(metas, part), golden[..., :2], golden[..., 2], f"metas.{part}")


def test_body_off_image_reuses_previous_frame(case: Case) -> None:
    kp = case.inputs["kp2ds"].copy()
    if len(kp) < 2:
        pytest.skip("needs two frames")
    kp[1, :, :2] = -5.0  # every point off the image on the negative side
    metas = metas_from_keypoints(kp, *case.frame_hw[::-1])
    np.testing.assert_array_equal(metas.body[1], metas.body[0])


def test_face_boxes_and_crops_match_wan(case: Case) -> None:
    boxes = face_boxes(case.metas())
    np.testing.assert_array_equal(boxes.boxes, case.outputs["face_boxes"])
    assert boxes.filled == 0
    assert_resized_close(face_crops(case.inputs["frames"], boxes.boxes), case.outputs["face_video"], "face_video")


def test_pose_videos_match_wan(case: Case) -> None:
    poses = case.metas().to_pixels()
    assert_images_equal(draw_pose_video(poses), case.outputs["pose_video_replace"], "pose_video_replace")
    assert_resized_close(draw_pose_video(poses, fit_hw=case.refer_hw), case.outputs["pose_video"], "pose_video")


def test_retargeting_matches_wan(case: Case) -> None:
    poses = retarget_poses(case.metas(), case.refer_metas())
    for ours, key in ((poses.body, "body"), (poses.left_hand, "lhand"), (poses.right_hand, "rhand")):
        golden_xy, golden_p = case.outputs[f"retargeted.kps_{key}"], case.outputs[f"retargeted.kps_{key}_p"]
        assert_keypoints_close(ours, golden_xy, golden_p, f"retargeted.{key}")
        assert (np.isnan(ours[..., :2]) == np.isnan(golden_xy)).all(), f"retargeted.{key}: dropped points differ"
    assert_images_equal(draw_pose_video(poses), case.outputs["pose_video_retargeted"], "pose_video_retargeted")


def test_replace_masks_and_backgrounds_match_wan(case: Case) -> None:
    masks = replace_masks(case.inputs["person_masks"])
    np.testing.assert_array_equal(masks, case.outputs["aug_masks"])
    assert_images_equal(backgrounds(case.inputs["frames"], masks), case.outputs["backgrounds"], "backgrounds")


def test_preprocess_gives_wans_folder(case: Case) -> None:
    """The top-level call in each mode, on the case's frames (already at the working size: resizes are identities)."""
    inputs, outputs, area = case.inputs, case.outputs, tuple(case.meta["area"])
    stages = []
    animate = preprocess(inputs["frames"], inputs["refer"], inputs["kp2ds"], area=area, progress=lambda *a: stages.append(a))
    assert_resized_close(animate.pose_frames, outputs["pose_video"], "pose_video")
    assert_resized_close(animate.face_frames, outputs["face_video"], "face_video")
    assert animate.masks is None and animate.background_frames is None and stages[-1][1] == stages[-1][2]
    retargeted = preprocess(inputs["frames"], inputs["refer"], inputs["kp2ds"], inputs["kp2ds_refer"], retarget=True, area=area)
    assert_images_equal(retargeted.pose_frames, outputs["pose_video_retargeted"], "pose_video_retargeted")
    replace = preprocess(inputs["frames"], inputs["refer_raw"], inputs["kp2ds"], mode="replace", area=area, masks=inputs["person_masks"])
    assert_images_equal(replace.pose_frames, outputs["pose_video_replace"], "pose_video_replace")
    assert_resized_close(replace.reference_resized, outputs["refer_replace"], "refer_replace")
    np.testing.assert_array_equal(replace.masks, outputs["aug_masks"])
    assert_images_equal(replace.background_frames, outputs["backgrounds"], "backgrounds")
    np.testing.assert_array_equal(replace.reference, inputs["refer_raw"])  # src_ref.png: the reference as given
    assert replace.mask_frames.shape == (*outputs["aug_masks"].shape, 3) and set(np.unique(replace.mask_frames)) <= {0, 255}
    report = replace.report.as_dict()
    assert report["frames"] == case.meta["frames"] and report["face_boxes_filled"] == 0 and report["person_masks_empty"] == 0


# ---- negative controls: the comparisons above must catch these ------------------------------------------------


def test_control_stick_width_off_by_one(case: Case, monkeypatch) -> None:
    wan_width = wan_draw.stick_width
    monkeypatch.setattr(wan_draw, "stick_width", lambda h, w: wan_width(h, w) + 1)
    poses = case.metas().to_pixels()
    with pytest.raises(AssertionError) as exact:
        assert_images_equal(draw_pose_video(poses), case.outputs["pose_video_replace"], "pose_video_replace")
    with pytest.raises(AssertionError) as resized:
        assert_resized_close(draw_pose_video(poses, fit_hw=case.refer_hw), case.outputs["pose_video"], "pose_video")
    print(f"stick width + 1: {exact.value} | {resized.value}")


def _first_face_box_definition(face: np.ndarray, width: int, height: int, scale: float = 1.3):
    """Wan's first, overridden ``get_face_bboxes``, called as the pipeline calls it (``ratio_aug`` off).

    It slices points 23:91 (meant for 133 points) of the 69-point face meta and never multiplies by the
    image size: the box is computed in normalised units.
    """
    points = face[23:91, :2]
    (min_x, min_y), (max_x, max_y) = points.min(axis=0), points.max(axis=0)
    box_w, box_h = max_x - min_x, max_y - min_y
    area = box_w * box_h * scale
    grow_w = (np.sqrt(area * (box_w / box_h)) - box_w) / 2
    grow_h = (np.sqrt(area * (box_h / box_w)) - box_h) / 4
    box = (int(max(min_x - grow_w, 0)), int(min(max_x + grow_w, width)), int(max(min_y - 3 * grow_h, 0)), int(min(max_y + grow_h, height)))
    return box if box[1] > box[0] and box[3] > box[2] else None


def test_control_first_face_box_definition(case: Case, monkeypatch) -> None:
    monkeypatch.setattr(wan_faces, "face_box", _first_face_box_definition)
    boxes = face_boxes(case.metas())
    with pytest.raises(AssertionError) as err:
        np.testing.assert_array_equal(boxes.boxes, case.outputs["face_boxes"])
    print(f"first face-box definition: {str(err.value).strip().splitlines()[:4]}")


def test_control_stretch_instead_of_letterbox(case: Case, monkeypatch) -> None:
    (fh, fw), (rh, rw) = case.frame_hw, case.refer_hw
    if fh * rw == rh * fw:
        pytest.skip("frames and reference have the same aspect ratio: stretching equals letterboxing here")
    monkeypatch.setattr(
        wan_draw,
        "padding_resize",
        lambda image, h, w, interpolation=cv2.INTER_LINEAR: cv2.resize(image, (w, h), interpolation=interpolation),
    )
    with pytest.raises(AssertionError) as err:
        assert_resized_close(draw_pose_video(case.metas().to_pixels(), fit_hw=case.refer_hw), case.outputs["pose_video"], "pose_video")
    print(f"stretch instead of letterbox: {err.value}")


# ---- where Wan crashes, posevid falls back or says one line ---------------------------------------------------


def test_frame_without_face_takes_nearest_box(case: Case) -> None:
    kp = case.inputs["kp2ds"].copy()
    if len(kp) < 2:
        pytest.skip("needs two frames")
    t = len(kp) // 2
    kp[t, 23:91] = 0  # no face found in frame t: Wan's box is 0/0 there
    metas = metas_from_keypoints(kp, *case.frame_hw[::-1])
    assert wan_faces.face_box(metas.face[t], metas.width, metas.height) is None
    boxes = face_boxes(metas)
    assert boxes.filled == 1 and boxes.sources[t] == "neighbour"
    expected = case.outputs["face_boxes"].copy()
    expected[t] = expected[t - 1] if t > 0 else expected[t + 1]  # nearest, the earlier on a tie
    np.testing.assert_array_equal(boxes.boxes, expected)
    out = preprocess(case.inputs["frames"], case.inputs["refer"], kp, area=tuple(case.meta["area"]))
    assert out.report.face_boxes_filled == 1


def test_no_face_anywhere_uses_the_head_points(case: Case) -> None:
    kp = case.inputs["kp2ds"].copy()
    kp[:, 23:91] = 0
    boxes = face_boxes(metas_from_keypoints(kp, *case.frame_hw[::-1]))
    assert boxes.filled == len(kp) and set(boxes.sources) == {"head"}
    for (x1, x2, y1, y2), nose in zip(boxes.boxes, kp[:, 0], strict=True):
        assert 0 <= x1 < x2 <= case.frame_hw[1] and 0 <= y1 < y2 <= case.frame_hw[0]
        if nose[2] > 0:
            assert x1 <= nose[0] <= x2 and y1 <= nose[1] <= y2


def _one_line_error(call) -> InputError:
    with pytest.raises(InputError) as err:
        call()
    assert "\n" not in str(err.value) and err.value.exit_code == 2
    return err.value


def test_bad_input_is_one_line(case: Case) -> None:
    inputs, area = case.inputs, tuple(case.meta["area"])
    nobody = np.zeros_like(inputs["kp2ds"])
    err = _one_line_error(lambda: preprocess(inputs["frames"], inputs["refer"], nobody, area=area))
    assert "no person" in str(err) and "driving video" in str(err)
    no_ref = np.zeros_like(inputs["kp2ds_refer"])
    err = _one_line_error(lambda: preprocess(inputs["frames"], inputs["refer"], inputs["kp2ds"], no_ref, retarget=True, area=area))
    assert "no person" in str(err) and "reference" in str(err)
    _one_line_error(lambda: preprocess(inputs["frames"], inputs["refer"], inputs["kp2ds"], retarget=True, area=area))
    _one_line_error(lambda: retarget_poses(case.metas(), metas_from_keypoints(no_ref, *case.refer_hw[::-1])))
    _one_line_error(lambda: preprocess(inputs["frames"], inputs["refer"], inputs["kp2ds"], mode="replace", retarget=True))
    _one_line_error(lambda: preprocess(inputs["frames"], inputs["refer"], inputs["kp2ds"], mode="dance"))
    _one_line_error(lambda: preprocess(inputs["frames"], inputs["refer"], inputs["kp2ds"][:1]))


def test_missing_hand_retargets_without_crash(case: Case) -> None:
    """A hand that was not found: Wan's NaN coordinates with score 0, and the drawing skips it."""
    kp = case.inputs["kp2ds"].copy()
    kp[:, 91:112] = 0  # left hand never found
    h, w = case.frame_hw
    poses = retarget_poses(metas_from_keypoints(kp, w, h), case.refer_metas())
    hands = np.concatenate([poses.left_hand, poses.right_hand], axis=1)
    dropped = np.isnan(hands[..., 0])
    assert dropped.sum() >= kp.shape[0] * 21 and (hands[dropped, 2] == 0).all() and not np.isnan(hands[~dropped]).any()
    frames = draw_pose_video(poses)
    assert frames.shape == (len(kp), *case.refer_hw, 3)


def test_empty_mask_stays_empty(case: Case) -> None:
    empty = np.zeros(case.frame_hw, np.uint8)
    np.testing.assert_array_equal(grid_fill(empty), empty)
    frames = case.inputs["frames"][:1]
    np.testing.assert_array_equal(backgrounds(frames, replace_masks(empty[None])), frames)


# ---- the offline person mask ----------------------------------------------------------------------------------


def test_selfie_person_mask_on_real_frames(case: Case) -> None:
    frames, kp, hull = case.inputs["frames"], case.inputs["kp2ds"], case.inputs["person_masks"].astype(bool)
    result = person_masks(frames, kp)
    h, w = case.frame_hw
    for t, (mask, box) in enumerate(zip(result.masks.astype(bool), result.boxes, strict=True)):
        assert box == person_box(kp[t], h, w) and mask.any(), f"frame {t}: empty mask"
        x0, y0, x1, y1 = box
        inside = np.zeros_like(mask)
        inside[y0:y1, x0:x1] = True
        assert not (mask & ~inside).any(), f"frame {t}: mask outside the person's box"
        iou = (mask & hull).sum() / (mask | hull).sum()
        cover = (mask & hull).sum() / hull.sum()
        assert iou >= SELFIE_MIN_IOU and cover >= SELFIE_MIN_HULL_COVER, f"frame {t}: IoU {iou:.3f}, hull covered {cover:.3f}"
    assert result.empty == 0
