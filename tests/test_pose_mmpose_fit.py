"""Issue 14: lag-free smoothing, the calibrated limb rule, the BlazePose -> COCO correction, threaded writers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posevid.cli import main
from posevid.pose import KeypointSequence, extract_keypoints, render_frame, smooth
from posevid.pose.cleanup import smooth_zero_phase
from posevid.pose.extract import smoothing_settings
from posevid.pose.mmpose_fit import COCO_TYPES, NEIGHBOURS, blazepose33_to_coco17_corrected, correct_sequence, draw_thresholds
from posevid.pose.options import options_from_flags
from posevid.pose.outputs import overlay_frame, write_pose_videos
from posevid.pose.render import overlay
from posevid.video import read_frames

H = 720.0


def _track(values: np.ndarray, score: float = 0.9) -> np.ndarray:
    kp = np.zeros((len(values), 1, 1, 3), np.float32)
    kp[:, 0, 0, 0] = values
    kp[:, 0, 0, 1] = 300.0
    kp[:, 0, 0, 2] = score
    return kp


@pytest.mark.parametrize("fps", [6.0, 10.0, 30.0])
def test_zero_phase_follows_a_step_without_lag(fps):
    """A 100 px jump at t = 1 s: no lag (the half-way point is at the jump) and within 10 px 0.1 s away from it."""
    n = int(2 * fps)
    step_at = int(fps)
    x = np.where(np.arange(n) >= step_at, 300.0, 200.0)
    out = smooth_zero_phase(_track(x), fps, scale=H)[:, 0, 0, 0]
    assert out[step_at - 1] < 250.0 <= out[step_at]  # crosses half-way between the last frame before and the first after
    far = np.abs(np.arange(n) - step_at + 0.5) >= max(1.0, 0.1 * fps)
    assert np.abs(out - x)[far].max() < 10.0
    # the online One-Euro filter trails behind at low frame rates: the reason zero-phase exists
    lagged = smooth(_track(x), np.arange(n) / fps, scale=H)[:, 0, 0, 0]
    if fps == 6.0:
        assert abs(lagged[step_at] - 300.0) > abs(out[step_at] - 300.0)


@pytest.mark.parametrize("fps", [25.0, 30.0])
def test_zero_phase_reduces_jitter(fps):
    rng = np.random.default_rng(0)
    x = 200.0 + rng.normal(0.0, 3.0, 200)
    out = smooth_zero_phase(_track(x), fps, scale=H)[:, 0, 0, 0]
    assert np.diff(out).std() < 0.5 * np.diff(x).std()
    assert abs(out.mean() - x.mean()) < 0.5


def test_zero_phase_keeps_fast_gestures():
    """Speed adaptivity: a fast 2 Hz swing is followed far more closely than with uniform smoothing of the same width."""
    t = np.arange(90) / 30.0
    x = 300.0 + 150.0 * np.sin(2 * np.pi * 2.0 * t)
    adaptive = smooth_zero_phase(_track(x), 30.0, scale=H)[:, 0, 0, 0]
    uniform = smooth_zero_phase(_track(x), 30.0, scale=H, speed=None)[:, 0, 0, 0]
    inner = slice(10, -10)
    assert np.abs(adaptive - x)[inner].mean() < 0.4 * np.abs(uniform - x)[inner].mean()


def test_zero_phase_skips_low_scores_and_weights_by_score():
    x = np.full(30, 100.0)
    kp = _track(x)
    kp[10, 0, 0, :] = [900.0, 900.0, 0.1]  # an unreliable joint: left as is, and it does not pull its neighbours
    out = smooth_zero_phase(kp, 30.0, scale=H)
    assert out[10, 0, 0, 0] == 900.0 and np.allclose(out[[9, 11], 0, 0, 0], 100.0)
    assert np.array_equal(out[..., 2], kp[..., 2])
    assert np.array_equal(smooth_zero_phase(kp, 30.0, scale=H, sigma_s=0.0), kp)


def test_smoothing_option_parity():
    assert smoothing_settings("one-euro") == {"min_cutoff": 2.0, "beta": 50.0, "d_cutoff": 1.0}  # the earlier library default
    assert smoothing_settings(True) == smoothing_settings("zero-phase")  # issue 20: the one default, as posevid pose
    assert smoothing_settings("none") is None and smoothing_settings(False) is None
    assert smoothing_settings("zero-phase")["method"] == "zero-phase"
    assert smoothing_settings({"min_cutoff": 1.0})["min_cutoff"] == 1.0


def _blaze_pose(rng=None) -> np.ndarray:
    """A plausible upright BlazePose-33 pose (pixels), all landmarks visible."""
    kp = np.zeros((33, 3), np.float32)
    kp[:, 2] = 0.9
    left = {1: (212, 96), 2: (215, 95), 3: (218, 96), 7: (225, 100), 9: (208, 118), 11: (240, 150), 13: (250, 210), 15: (255, 260),
            17: (258, 272), 19: (256, 275), 21: (252, 268), 23: (225, 270), 25: (228, 350), 27: (230, 430), 29: (226, 440),
            31: (240, 445)}  # fmt: skip
    kp[0, :2] = (200, 105)
    for i, (x, y) in left.items():
        kp[i, :2] = (x, y)
        kp[i + 1 if i >= 11 else {1: 4, 2: 5, 3: 6, 7: 8, 9: 10}[i], :2] = (400 - x, y)
    return kp


def test_joint_correction_is_applied_equivariant_and_can_be_turned_off():
    pose = _blaze_pose()
    plain = pose[[0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]]
    corrected = blazepose33_to_coco17_corrected(pose)
    moved = np.linalg.norm(corrected[:, :2] - plain[:, :2], axis=-1)
    assert moved[[11, 12]].min() > 1.0  # the shipped fit moves the hips (BlazePose's sit higher than COCO's)
    assert np.array_equal(corrected[:, 2], plain[:, 2])
    # left/right coefficients are shared with mirrored neighbours: a mirror-symmetric pose stays symmetric
    np.testing.assert_allclose(corrected[11, 0] + corrected[12, 0], 400.0, atol=1e-3)
    # scale + shift of the body scales + shifts the correction
    shifted = pose.copy()
    shifted[:, :2] = pose[:, :2] * 1.5 + 40
    np.testing.assert_allclose(blazepose33_to_coco17_corrected(shifted)[:, :2], corrected[:, :2] * 1.5 + 40, atol=1e-2)
    # zero coefficients = the plain selection
    zero = {name: np.zeros(len(near)) for name, near in NEIGHBOURS.items()}
    assert np.array_equal(blazepose33_to_coco17_corrected(pose, zero), plain)
    seq = KeypointSequence(pose[None, None].repeat(3, 0), "blazepose33", 400, 500, 10.0)
    assert correct_sequence(seq).format == "coco17" and correct_sequence(seq).meta["joint_correction"] == "mmpose_fit.json"
    off = options_from_flags(joint_correction="off", limb_rule="threshold")
    assert off.prepare(seq) is seq and off.draw_threshold == 0.3
    on = options_from_flags()
    assert on.joint_correction and on.limb_rule == "calibrated"
    np.testing.assert_allclose(on.prepare(seq).keypoints[0, 0], corrected)
    assert not options_from_flags(style="openpose").joint_correction  # auto: on for the fyp style only


def test_calibrated_limb_rule_draws_per_joint():
    thr = draw_thresholds()
    assert thr.shape == (17,) and all(thr[j] == thr[j + 1] for j in range(1, 17, 2))  # left and right share a threshold
    assert len({COCO_TYPES[j] for j in range(17)}) == len(NEIGHBOURS)
    kp = np.zeros((17, 3), np.float32)
    kp[13, :] = [100, 100, 0.2]  # left knee
    kp[15, :] = [100, 180, 0.2]  # left ankle: link 0 (15, 13)
    vec = np.full(17, 0.3, np.float32)
    assert render_frame(kp, (200, 200), threshold=vec).max() == 0  # today's rule: both under 0.3, nothing drawn
    vec[[13, 15]] = 0.1
    assert render_frame(kp, (200, 200), threshold=vec).max() > 0  # lower per-joint thresholds draw the leg
    assert render_frame(kp, (200, 200), "openpose", threshold=vec).max() > 0  # converted to the OpenPose layout
    with pytest.raises(Exception, match="one value per joint"):
        render_frame(kp, (200, 200), threshold=np.zeros(5))


@pytest.mark.parametrize("style", ["fyp", "openpose"])
def test_cheap_overlay_equals_paste(style):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (120, 96, 3), np.uint8)
    kp = np.concatenate([rng.uniform(10, 90, (17, 2)), np.full((17, 1), 0.9)], axis=1).astype(np.float32)
    want = overlay(frame, render_frame(kp, (96, 120), style, fmt="coco17"))
    assert np.array_equal(overlay_frame(frame, kp, style, "coco17", 0.3), want)


def test_threaded_writer_writes_the_same_frames_as_sequential(tmp_path):
    rng = np.random.default_rng(2)
    kp = np.concatenate([rng.uniform(10, 90, (12, 1, 17, 2)), np.full((12, 1, 17, 1), 0.9)], axis=-1).astype(np.float32)
    seq = KeypointSequence(kp, "coco17", 96, 96, 10.0)
    frames = [rng.integers(0, 255, (96, 96, 3), np.uint8) for _ in range(12)]
    for threaded in (True, False):
        d = tmp_path / str(threaded)
        d.mkdir()
        write_pose_videos(seq, d / "s.mp4", overlay_path=d / "o.mp4", video_seq=seq, frames=iter(frames), threaded=threaded)
    for name in ("s.mp4", "o.mp4"):
        a, b = read_frames(tmp_path / "True" / name), read_frames(tmp_path / "False" / name)
        assert len(a) == 12 and np.array_equal(a, b)
    # an error on the writer thread surfaces and leaves no file behind
    with pytest.raises(Exception):  # noqa: B017 - any encoder error
        write_pose_videos(seq, tmp_path / "bad.mp4", overlay_path=tmp_path / "bad_o.mp4", video_seq=seq,
                          frames=iter([np.zeros((96, 96, 3), np.uint8), np.zeros((50, 50, 3), np.uint8)] * 6))  # fmt: skip
    assert not (tmp_path / "bad.mp4").exists() and not (tmp_path / "bad_o.mp4").exists()


def test_cli_new_defaults_and_parity_flags(charades_cut, tmp_path):
    base = ["pose", str(charades_cut), "--quiet", "--max-frames", "12", "--no-overlay", "--workers", "1"]
    assert main([*base, "--out", str(tmp_path / "new")]) == 0
    settings = json.loads((tmp_path / "new" / "pose.json").read_text())["settings"]
    assert settings["smoothing"]["method"] == "zero-phase" and settings["limb_rule"] == "calibrated"
    assert settings["joint_correction"] is True and settings["preset"] == "ultrafast"
    old = ["--smooth", "one-euro", "--limb-rule", "threshold", "--joint-correction", "off", "--preset", "medium"]
    assert main([*base, "--out", str(tmp_path / "old"), *old]) == 0
    a, b = KeypointSequence.load(tmp_path / "old" / "keypoints.json"), KeypointSequence.load(tmp_path / "new" / "keypoints.json")
    assert a.meta["smoothing"] == {"min_cutoff": 2.0, "beta": 50.0, "d_cutoff": 1.0}
    # the parity flags give what earlier versions wrote: the One-Euro track (the library default before issue 20) in COCO-17
    ref = extract_keypoints(charades_cut, max_frames=12, smoothing="one-euro", progress=False, workers=1).to_format("coco17")
    np.testing.assert_allclose(a.keypoints, ref.keypoints, atol=0.01)
    assert not np.allclose(a.keypoints[..., :2], b.keypoints[..., :2], atol=0.5)  # the correction moved joints
    # --no-smooth still means no smoothing
    assert main([*base, "--out", str(tmp_path / "raw"), "--no-smooth"]) == 0
    assert json.loads((tmp_path / "raw" / "pose.json").read_text())["settings"]["smoothing"] is None


def test_chamfer_metric_on_known_masks():
    from posevid.pose.chamfer import video_chamfer

    a = np.zeros((40, 40, 3), np.uint8)
    b = np.zeros((40, 40, 3), np.uint8)
    a[5:35, 10] = 255
    b[5:35, 13] = 255
    empty = np.zeros_like(a)
    res = video_chamfer([a, a, empty, empty], [b, a, a, empty])
    assert res.frames == 4 and res.compared == 2 and res.one_empty == 1 and res.both_empty == 1
    # 3 px apart; OpenCV's 3x3 L2 approximation (as the yardstick tool uses) counts 0.955 per axis step
    assert res.per_frame[0] == pytest.approx(3 * 0.955, abs=0.01) and res.per_frame[1] == 0.0
    assert res.median_px == pytest.approx(1.4325, abs=0.01) and res.median_frac_height == pytest.approx(1.4325 / 40, abs=0.001)
