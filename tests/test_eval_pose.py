"""Pose-accuracy maths on hand-built keypoints (no estimator): PCK, OKS, OKS-AP, detection rate, frame fitting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from posevid.eval.pose_accuracy import COCO_SIGMAS, fit_keypoints, oks, oks_ap, pck_frame, pick_person, pose_accuracy


def person(box=(100, 200), x0=50.0, y0=20.0) -> np.ndarray:
    """17 COCO joints spread over a w x h box (corners included, so the box is exactly w x h), all visible."""
    w, h = box
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(0, w, 17), rng.uniform(0, h, 17)])
    pts[0], pts[1] = (0, 0), (w, h)
    kp = np.ones((17, 3))
    kp[:, :2] = pts + (x0, y0)
    return kp


def test_pck_counts_joints_within_alpha_times_box_size():
    gt = person()  # box 100 x 200 -> size 200: pck@0.05 = 10 px, @0.1 = 20 px, @0.2 = 40 px
    pred = gt.copy()
    errors = np.array([0, 5, 9, 11, 15, 19, 21, 30, 39, 41, 60, 0, 0, 0, 0, 0, 0], float)
    pred[:, 0] += errors
    assert pck_frame(gt, pred, 0.05) == (int((errors <= 10).sum()), 17) == (9, 17)
    assert pck_frame(gt, pred, 0.1) == (12, 17)
    assert pck_frame(gt, pred, 0.2) == (15, 17)
    assert pck_frame(gt, None, 0.2) == (0, 17)  # nobody detected: every joint wrong
    pred[3, 2] = 0.0  # a joint the estimator did not find counts as wrong even if its (stale) position is right
    assert pck_frame(gt, pred, 0.2) == (14, 17)


def test_pck_ignores_invisible_gt_joints_and_supports_torso_reference():
    gt = person()
    gt[10:, 2] = 0.0  # only 10 visible joints
    pred = gt.copy()
    pred[:, 1] += 12.0
    assert pck_frame(gt, pred, 0.1) == (10, 10)
    torso = person()
    torso[5, :2], torso[12, :2] = (0, 0), (30, 40)  # l_shoulder -> r_hip: 50 px
    torso[6, :2], torso[11, :2] = (0, 0), (60, 80)  # r_shoulder -> l_hip: 100 px  => torso size 75
    p = torso.copy()
    p[:, 0] += 7.0  # 7 px: inside 0.1 x 75 = 7.5, outside 0.05 x 75 = 3.75
    assert pck_frame(torso, p, 0.1, ref="torso") == (17, 17)
    assert pck_frame(torso, p, 0.05, ref="torso") == (0, 17)
    torso[11:13, 2] = 0.0  # no hips: torso undefined, frame not scored
    assert pck_frame(torso, p, 0.1, ref="torso") == (0, 0)


def test_oks_closed_form():
    gt = person(box=(100, 200))
    assert oks(gt, gt) == pytest.approx(1.0)
    pred = gt.copy()
    d = 12.0
    pred[9, 0] += d  # left wrist moves 12 px
    area = 100 * 200
    k = 2 * COCO_SIGMAS[9]
    expected = (16 + math.exp(-(d**2) / (2 * area * k**2))) / 17
    assert oks(gt, pred) == pytest.approx(expected, rel=1e-9)
    assert oks(gt, None) == 0.0
    empty = gt.copy()
    empty[:, 2] = 0
    assert math.isnan(oks(empty, gt))


def test_oks_ap_exact_cases():
    # every frame perfect -> AP 1; half the frames missed -> precision 1 up to recall 0.5: 51 of 101 recall points
    assert oks_ap(np.ones(10), np.ones(10), 10)["oks_ap"] == pytest.approx(1.0)
    assert oks_ap(np.ones(5), np.ones(5), 10)["oks_ap"] == pytest.approx(51 / 101)
    # OKS 0.7 for all: a hit for thresholds 0.50..0.70 (5 of 10), a miss above
    res = oks_ap(np.full(4, 0.7), np.ones(4), 4)
    assert res["oks_ap"] == pytest.approx(0.5) and res["oks_ap50"] == 1.0 and res["oks_ap75"] == 0.0
    # ranking matters: a confident wrong detection ranked first gives precision 0.5 up to the reachable recall 0.5
    res = oks_ap(np.array([0.1, 1.0]), np.array([0.9, 0.5]), 2)
    assert res["oks_ap50"] == pytest.approx((51 * 0.5) / 101)


def test_pose_accuracy_sequence_and_detection_rate():
    gt = np.stack([person(), person(), person(), person()])
    detections = [gt[0][None], np.zeros((0, 17, 3)), gt[2][None] + [[[3.0, 0, 0]]], np.stack([gt[3] + [200.0, 0, 0], gt[3]])]
    summary, per_frame = pose_accuracy(gt, detections)
    assert summary["detection_rate"] == 0.75
    assert summary["pck@0.05"] == pytest.approx(3 * 17 / (4 * 17))  # frame 1 missed; frame 3's second person is picked
    assert per_frame["pck@0.1"] == [1.0, 0.0, 1.0, 1.0]
    assert per_frame["oks"][1] == 0.0 and per_frame["oks"][0] == pytest.approx(1.0)
    assert 0.74 < summary["oks"] < 0.75


def test_pick_person_prefers_best_match():
    gt = person()
    far, near = gt + [300.0, 0, 0], gt + [2.0, 0, 0]
    assert np.array_equal(pick_person(gt, np.stack([far, near])), near)
    assert pick_person(gt, np.zeros((0, 17, 3))) is None


def test_fit_keypoints_modes():
    kp = np.array([[[0.0, 0.0, 1.0], [200.0, 100.0, 1.0], [100.0, 50.0, 1.0]]])
    out, mode = fit_keypoints(kp, (200, 100), (100, 50))
    assert mode == "stretch" and np.allclose(out[0, :, :2], [[0, 0], [100, 50], [50, 25]])
    out, mode = fit_keypoints(kp, (200, 100), (50, 50))  # cover: scale 0.5, crop 25 px each side
    assert mode == "center-crop" and np.allclose(out[0, 2, :2], [25, 25])
    assert out[0, 0, 2] == 0 and out[0, 1, 2] == 0 and out[0, 2, 2] == 1  # corners cropped away -> invisible
    out, mode = fit_keypoints(kp, (200, 100), (50, 50), "pad")  # fit: scale 0.25, 12/13 px bars top/bottom
    assert np.allclose(out[0, :, :2], [[0, 12], [50, 37], [25, 24.5]])
