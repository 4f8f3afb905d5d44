"""Estimator interface, registry, and the YOLOX + RTMPose ONNX path on tiny graphs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from posevid.errors import CheckpointError, InputError
from posevid.pose import available_estimators, get_estimator, register_estimator
from posevid.pose.estimators import EstimatorBase, PoseEstimator
from posevid.pose.estimators.rtmpose import box_to_affine, decode_simcc, letterbox, nms


def test_registry_lists_and_rejects():
    assert {"mediapipe", "dwpose", "rtmpose"} <= set(available_estimators())
    with pytest.raises(InputError, match="unknown pose estimator"):
        get_estimator("openpifpaf")

    @register_estimator("constant-test")
    class Constant(EstimatorBase):
        name = "constant-test"

        def __call__(self, rgb_frame):
            return np.ones((1, 17, 3), np.float32)

    est = get_estimator("constant-test")
    assert isinstance(est, PoseEstimator) and est(np.zeros((4, 4, 3), np.uint8)).shape == (1, 17, 3)


def test_letterbox_nms_simcc_helpers():
    img = np.zeros((100, 200, 3), np.uint8)
    img[..., 0] = 255  # red in RGB -> last channel in the BGR blob
    blob, ratio = letterbox(img, (64, 64))
    assert blob.shape == (1, 3, 64, 64) and ratio == pytest.approx(0.32)
    assert blob[0, 2, 0, 0] == 255 and blob[0, 0, 0, 0] == 0 and blob[0, 0, 63, 0] == 114  # padded bottom
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]
    sx, sy = np.zeros((2, 8)), np.zeros((2, 10))
    sx[0, 3], sy[0, 6], sx[1, 7], sy[1, 1] = 0.9, 0.5, 0.4, 0.7
    np.testing.assert_allclose(decode_simcc(sx, sy, 2.0), [[1.5, 3.0, 0.5], [3.5, 0.5, 0.4]])
    center, scale, m = box_to_affine(np.array([0, 0, 30, 40]), (24, 32), padding=1.0)
    assert center.tolist() == [15, 20] and scale.tolist() == [30, 40]
    np.testing.assert_allclose(m @ [0, 0, 1], [0, 0])  # the box corner maps to the crop corner


def test_rtmpose_on_tiny_onnx_models(tiny_rtmpose_models):
    det, pose = tiny_rtmpose_models
    with get_estimator("rtmpose", det_model=det, pose_model=pose) as est:
        assert est.det_size == (64, 64) and est.pose_wh == (24, 32)
        frame = np.zeros((128, 128, 3), np.uint8)
        boxes = est.detect(frame)
        # one box: 32x32 at centre (28, 36) in the 64x64 letterbox, x2 back to the frame; duplicate removed by NMS
        np.testing.assert_allclose(boxes, [[24, 40, 88, 104, 0.9]], atol=1e-4)
        people = est(frame)
    assert people.shape == (1, 17, 3) and est.keypoint_format == "coco17"
    # expected by hand: box 64x64 padded x1.25 = 80 wide, height to the 24:32 aspect = 106.67, centre (56, 72)
    k = np.arange(17)
    x = (k + 2.5) / 24 * 80 + 56 - 40
    y = (k + 5.0) / 32 * (80 * 32 / 24) + 72 - 80 * 32 / 24 / 2
    np.testing.assert_allclose(people[0, :, 0], x, atol=1e-3)
    np.testing.assert_allclose(people[0, :, 1], y, atol=1e-3)
    np.testing.assert_allclose(people[0, :, 2], 0.8, atol=1e-6)


def test_missing_onnx_model_offline_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("POSEVID_DET_MODEL", raising=False)
    with pytest.raises(CheckpointError) as err:
        get_estimator("dwpose")
    msg = str(err.value)
    assert "\n" not in msg and "yolox_l.onnx" in msg and str(tmp_path / "models") in msg
    with pytest.raises(CheckpointError, match="not found"):
        get_estimator("rtmpose", det_model=tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot load ONNX model"):
        get_estimator("rtmpose", det_model=bad, pose_model=bad)


def test_mediapipe_finds_the_person_in_a_real_frame(charades_cut):
    from posevid.video import iter_frames

    frame = next(iter_frames(charades_cut, indices=[30]))
    with get_estimator("mediapipe", static_image_mode=True) as est:
        people = est(frame)
        nobody = est(np.zeros_like(frame))
    assert people.shape == (1, 33, 3) and est.keypoint_format == "blazepose33"
    nose = people[0, 0]
    assert nose[2] > 0.5 and 180 < nose[0] < 300 and 300 < nose[1] < 400  # the man's head, by the window
    assert nobody.shape == (0, 33, 3)


def test_mediapipe_imports_without_matplotlib_which_stays_importable():
    """Importing mediapipe through posevid skips matplotlib, and matplotlib (and mediapipe's plotting helper) still work after."""
    import subprocess
    import sys

    code = (
        "import sys; from posevid.pose.estimators.mediapipe_pose import import_mediapipe; mp = import_mediapipe(); "
        "skipped = 'matplotlib.figure' not in sys.modules and 'matplotlib' not in sys.modules; "
        "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
        "from mediapipe.python.solutions import drawing_utils; "
        "print(skipped, hasattr(matplotlib, '__path__'), drawing_utils.plt.figure is plt.figure, mp.solutions.pose.Pose is not None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "True", "True"]
