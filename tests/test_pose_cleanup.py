"""Clean-up (smoothing, gap filling, person choice) and retargeting on signals with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from posevid.errors import InputError, NoPersonError
from posevid.pose import KeypointSequence, OneEuroFilter, fill_missing, retarget, select_persons, smooth
from posevid.pose.retargeting import COCO17_BONES, bone_lengths, linear_fit

FPS, H = 30.0, 360


def _still(T=90) -> np.ndarray:
    kp = np.zeros((T, 1, 17, 3), np.float32)
    kp[..., 0], kp[..., 1], kp[..., 2] = 100, 200, 1
    return kp


def test_one_euro_reduces_jitter_on_a_still_noisy_point():
    rng = np.random.default_rng(0)
    truth = _still()
    noisy = truth.copy()
    noisy[..., :2] += rng.normal(0, 2.0, size=noisy[..., :2].shape)
    out = smooth(noisy, np.arange(len(noisy)) / FPS, scale=H)
    jitter_in = np.diff(noisy[..., :2], axis=0).std()
    jitter_out = np.diff(out[..., :2], axis=0).std()
    assert jitter_out < 0.45 * jitter_in  # measured: 2.82 px -> 1.05 px
    assert np.abs(out[10:, ..., :2] - truth[10:, ..., :2]).std() < np.abs(noisy - truth)[..., :2].std()
    np.testing.assert_array_equal(out[..., 2], noisy[..., 2])  # scores untouched


def test_one_euro_step_response_lag_is_bounded():
    step = _still()
    step[45:, ..., 0] += 100
    out = smooth(step, np.arange(len(step)) / FPS, scale=H)
    assert (out[:45, ..., 0] == 100).all()
    assert (out[47, ..., 0] >= 190).all()  # within 2 frames (67 ms) at 30 fps: the speed term opens the filter
    assert np.abs(out[-1, ..., 0] - 200).max() < 0.5
    # without the speed term (beta = 0) the same filter lags far more: the test can tell
    slow = smooth(step, np.arange(len(step)) / FPS, scale=H, beta=0.0)
    assert (slow[47, ..., 0] < 170).all()


def test_low_score_points_pass_through_and_reset():
    kp = _still(10)
    kp[5, 0, 3] = (400, 50, 0.1)  # a wild low-score point
    out = smooth(kp, np.arange(10) / FPS, scale=H)
    np.testing.assert_array_equal(out[5, 0, 3], kp[5, 0, 3])
    assert np.abs(out[6:, 0, 3, :2] - [100, 200]).max() < 1e-3  # the next valid point does not drag it along


def test_one_euro_filter_validates_parameters():
    with pytest.raises(InputError):
        OneEuroFilter(min_cutoff=0)
    f = OneEuroFilter()
    assert f(np.array([1.0]), 0.0)[0] == 1.0


def test_fill_interpolate_hold_none():
    kp = _still(6)
    kp[:, 0, :, 0] = np.arange(6)[:, None] * 10.0
    kp[[0, 2, 3], ..., :] = 0  # nobody in frames 0, 2, 3
    interp, n = fill_missing(kp, "interpolate")
    assert n == 3
    np.testing.assert_allclose(interp[[0, 2, 3], 0, 0, 0], [10, 20, 30])  # leading held, gap linear
    held, n = fill_missing(kp, "hold")
    assert n == 3 and held[[0, 2, 3], 0, 0, 0].tolist() == [10, 10, 10]
    none, n = fill_missing(kp, "none")
    assert n == 0 and none[2].max() == 0
    with pytest.raises(InputError):
        fill_missing(kp, "guess")


def _person(cx, cy, half) -> np.ndarray:
    p = np.zeros((17, 3), np.float32)
    p[:, 0] = cx + np.linspace(-half, half, 17)
    p[:, 1] = cy + np.linspace(-2 * half, 2 * half, 17)
    p[:, 2] = 1
    return p


def test_select_largest_central_and_track():
    small_center, big_corner = _person(100, 100, 5), _person(30, 40, 20)
    frames = [np.stack([small_center, big_corner])] * 2 + [np.zeros((0, 17, 3), np.float32)]
    largest = select_persons(frames, mode="largest", width=200, height=200, num_keypoints=17)
    central = select_persons(frames, mode="central", width=200, height=200, num_keypoints=17)
    assert largest.shape == (3, 1, 17, 3) and largest[0, 0, 8, 0] == 30 and largest[2].max() == 0
    assert central[0, 0, 8, 0] == 100
    # tracking: once chosen, the person is followed even when another becomes larger
    grown = _person(100, 100, 30)
    moved = _person(102, 101, 5)
    tracked = select_persons([np.stack([small_center]), np.stack([grown * [1, 1, 1] + [60, 0, 0], moved])], mode="largest",
                             width=200, height=200, num_keypoints=17)  # fmt: skip
    assert tracked[1, 0, 8, 0] == 102
    everyone = select_persons(frames, mode="all", width=200, height=200, num_keypoints=17)
    assert everyone.shape == (3, 2, 17, 3)


# ---- retargeting -------------------------------------------------------------------------------------------------

STANDING = np.array(
    [(64, 20), (67, 17), (61, 17), (71, 19), (57, 19), (76, 36), (52, 36), (82, 56), (46, 56), (86, 74), (42, 74),
     (72, 74), (56, 74), (74, 96), (54, 96), (76, 118), (52, 118)], np.float32)  # fmt: skip
STANDING = np.concatenate([STANDING, np.ones((17, 1), np.float32)], axis=1)


def _driving(T=4) -> KeypointSequence:
    frames = []
    for t in range(T):  # raise the left forearm progressively
        kp = STANDING.copy()
        angle = np.radians(30 * t)
        kp[9, :2] = kp[7, :2] + 18 * np.array([np.sin(angle), np.cos(angle)])
        frames.append(kp)
    return KeypointSequence(np.stack(frames), "coco17", 128, 128, 8.0)


def test_bone_retargeting_gives_reference_lengths_and_driving_directions():
    reference = STANDING.copy()
    reference[:, :2] = reference[:, :2] * 2 + [100, 50]  # a bigger person elsewhere ...
    reference[9, :2] = reference[7, :2] + [0, 60]  # ... with a long left forearm (60 px)
    ref_len = bone_lengths(reference)
    out = retarget(_driving(), reference, size=(400, 400), method="bones")
    assert out.format == "coco17" and (out.width, out.height) == (400, 400)
    for t in range(len(out)):
        got = bone_lengths(out.keypoints[t, 0])
        for bone in COCO17_BONES:
            assert got[bone] == pytest.approx(ref_len[bone], abs=1e-3)
        fore = out.keypoints[t, 0, 9, :2] - out.keypoints[t, 0, 7, :2]
        drv = _driving().keypoints[t, 0, 9, :2] - _driving().keypoints[t, 0, 7, :2]
        assert np.dot(fore, drv) / (np.linalg.norm(fore) * np.linalg.norm(drv)) == pytest.approx(1.0, abs=1e-6)
    # the root (mid-hips) starts on the reference's and moves like the driving root, scaled
    fit = out.meta["retarget"]
    mid = out.keypoints[:, 0, [11, 12], :2].mean(axis=1)
    drv_mid = _driving().keypoints[:, 0, [11, 12], :2].mean(axis=1)
    np.testing.assert_allclose(mid[0], reference[[11, 12], :2].mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(mid, drv_mid * fit["root_scale"] + fit["root_shift"], atol=1e-3)


def test_linear_fit_recovers_scale_and_translation():
    reference = STANDING.copy()
    reference[:, :2] = reference[:, :2] * 1.5 + [20, -10]
    scale, shift = linear_fit(STANDING, reference)
    assert scale == pytest.approx(1.5) and np.allclose(shift, [20, -10], atol=1e-4)
    reference = _driving().keypoints[0, 0].copy()  # the fit uses the first driving frame
    reference[:, :2] = reference[:, :2] * 1.5 + [20, -10]
    out = retarget(_driving(), reference, size=(300, 300), method="linear")
    np.testing.assert_allclose(out.keypoints[:, 0, :, :2], _driving().keypoints[:, 0, :, :2] * 1.5 + [20, -10], atol=1e-3)


def test_retarget_errors():
    with pytest.raises(InputError):
        retarget(_driving(), STANDING, size=(10, 10), method="magic")
    with pytest.raises(InputError):
        retarget(_driving(), STANDING[:5], size=(10, 10))
    empty = KeypointSequence(np.zeros((3, 17, 3)), "coco17", 10, 10, 8.0)
    with pytest.raises(NoPersonError):
        retarget(empty, STANDING, size=(10, 10))


@pytest.mark.parametrize("fit", ["crop", "pad"])
def test_fit_transform_keeps_keypoints_on_their_pixels(fit):
    from posevid.pose import FitTransform
    from posevid.utils.sizes import parse_size

    src = np.zeros((90, 160, 3), np.uint8)
    points = np.array([[40.0, 30.0, 1.0], [120.0, 70.0, 1.0], [80.0, 45.0, 1.0]], np.float32)
    for x, y, _ in points:
        src[int(y) - 2 : int(y) + 3, int(x) - 2 : int(x) + 3] = 255
    tf = FitTransform((160, 90), parse_size("64x64"), fit)
    out, moved = tf.frame(src), tf.keypoints(points)
    assert out.shape == (64, 64, 3)
    for x, y, _ in moved:
        if 0 <= x < 64 and 0 <= y < 64:
            assert out[int(round(y)), int(round(x))].max() > 100
    if fit == "pad":  # the whole frame fits: black bands above and below, nothing lost
        assert out[:10].max() == 0 and out[-10:].max() == 0 and (moved[:, 0] >= 0).all() and (moved[:, 0] < 64).all()
    else:  # the frame fills the square: the sides are cut
        assert tf.resized == (114, 64) and tf.offset == (-25, 0)
    with pytest.raises(InputError):
        parse_size("512")
    with pytest.raises(InputError):
        FitTransform((1, 1), (2, 2), "stretch")
