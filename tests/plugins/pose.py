"""Fixtures for the pose tests: real-data cuts, one shared mediapipe extraction, tiny ONNX models."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

POSE_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pose"


@pytest.fixture(scope="session")
def pose_dir() -> Path:
    return POSE_FIXTURES


@pytest.fixture(scope="session")
def charades_cut(pose_dir) -> Path:
    """60 frames of Charades 3IPI3 (406x720, 16.6 fps) re-encoded (a real person at a real window)."""
    return pose_dir / "charades_3IPI3_cut.mp4"


@pytest.fixture(scope="session")
def charades_two_people(pose_dir) -> Path:
    """The first 140 frames of Charades 5D3X6 (a man and a woman on stairs, 16 fps), at a quarter of the pixels.

    Made with ``write_video(out, (cv2.resize(f, (204, 360), interpolation=cv2.INTER_AREA) for f in
    iter_frames("5D3X6.mp4", max_frames=140)), fps=16, crf=30)``. 140 frames: cut into two segments (issue 20).
    """
    return pose_dir / "charades_5D3X6_140.mp4"


@pytest.fixture(scope="session")
def charades_cut_mmpose(pose_dir) -> Path:
    """The first 45 frames of team13's MMPose render of the same clip (stream copied, not re-encoded)."""
    return pose_dir / "charades_3IPI3_cut_mmpose.mp4"


@pytest.fixture(scope="session")
def charades_cut_keypoints(charades_cut):
    """mediapipe keypoints of the cut with default settings, extracted once per session."""
    from posevid.pose import extract_keypoints

    return extract_keypoints(charades_cut, progress=False)


def _export_onnx(module, example, path: Path, input_name: str, output_names: list[str]) -> Path:
    """Export a tiny torch module to ONNX without the ``onnx`` package (legacy exporter, no custom ops).

    torch's TorchScript exporter calls ``onnx`` only to splice in custom onnxscript functions; with none, the
    bytes it already built are the model, so that step is bypassed. If torch moves that helper, the plain
    exporter is tried (it works when ``onnx`` is installed), else the fixture skips with the reason.
    """
    import torch

    try:
        from torch.onnx._internal.torchscript_exporter import onnx_proto_utils
    except ImportError:
        onnx_proto_utils = None
    original = getattr(onnx_proto_utils, "_add_onnxscript_fn", None)
    if original is not None:
        onnx_proto_utils._add_onnxscript_fn = lambda model_bytes, custom_opsets: model_bytes
    try:
        buffer = io.BytesIO()
        torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=[input_name], output_names=output_names, opset_version=17)
    except Exception as exc:  # pragma: no cover - depends on the torch build
        pytest.skip(f"cannot export a tiny ONNX graph with this torch ({type(exc).__name__}: {str(exc)[:80]})")
    finally:
        if original is not None:
            onnx_proto_utils._add_onnxscript_fn = original
    path.write_bytes(buffer.getvalue())
    return path


def _export_simcc(simcc_x, simcc_y, path: Path) -> Path:
    """A 32x24-input SimCC pose model that returns the given fixed ``(1, K, 48)`` / ``(1, K, 64)`` maps whatever the image."""
    import torch

    class Pose(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("sx", simcc_x)
            self.register_buffer("sy", simcc_y)

        def forward(self, x):
            z = 0.0 * x.mean()
            return self.sx + z, self.sy + z

    return _export_onnx(Pose(), torch.zeros(1, 3, 32, 24), path, "input", ["simcc_x", "simcc_y"])


@pytest.fixture(scope="session")
def tiny_rtmpose_models(tmp_path_factory):
    """A 64x64 YOLOX-like detector (raw head output) and a 32x24 SimCC pose model with known answers.

    Detector: anchor (stride 8, cell x=3, y=4) holds a 32x32 box centred at (28, 36) in input pixels
    with score 0.9 x 1.0; a weaker duplicate overlaps it (removed by NMS) and a far anchor scores 0.1
    (below threshold). Pose: joint k peaks at SimCC bins x = 2(k+2)+1, y = 2(k+5), i.e. (k+2.5, k+5) px
    in the 24x32 crop, with maxima 0.9 (x) and 0.8 (y).
    """
    import torch

    root = tmp_path_factory.mktemp("onnx")
    n_anchor = 8 * 8 + 4 * 4 + 2 * 2
    head = torch.zeros(1, n_anchor, 6)
    head[..., 2:4] = 0.0
    a = 4 * 8 + 3  # stride-8 cell (x=3, y=4) -> centre (3*8, 4*8) + offset
    head[0, a] = torch.tensor([0.5, 0.5, float(np.log(4.0)), float(np.log(4.0)), 0.9, 1.0])
    b = 4 * 8 + 4  # overlapping neighbour, lower score
    head[0, b] = torch.tensor([-0.25, 0.5, float(np.log(4.0)), float(np.log(4.0)), 0.6, 1.0])
    head[0, 64 + 15] = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.1, 1.0])

    class Det(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("head", head)

        def forward(self, images):
            return self.head + 0.0 * images.mean()

    simcc_x = torch.full((1, 17, 48), 0.01)
    simcc_y = torch.full((1, 17, 64), 0.01)
    for k in range(17):
        simcc_x[0, k, 2 * (k + 2) + 1] = 0.9
        simcc_y[0, k, 2 * (k + 5)] = 0.8

    det = _export_onnx(Det(), torch.zeros(1, 3, 64, 64), root / "det.onnx", "images", ["output"])
    pose = _export_simcc(simcc_x, simcc_y, root / "pose.onnx")
    return det, pose


@pytest.fixture(scope="session")
def tiny_wholebody_pose_model(tmp_path_factory):
    """A 32x24 SimCC pose model with 133 joints (DWPose/RTMW layout): joint k peaks at x bin 2(k % 22) + 1, y bin 2(k % 30),
    i.e. (k % 22 + 0.5, k % 30) px in the 24x32 crop, with maxima 0.9 (x) and 0.2 + 0.6 (k % 2) (y): odd joints score 0.8,
    even ones 0.2."""
    import torch

    simcc_x = torch.full((1, 133, 48), 0.01)
    simcc_y = torch.full((1, 133, 64), 0.01)
    for k in range(133):
        simcc_x[0, k, 2 * (k % 22) + 1] = 0.9
        simcc_y[0, k, 2 * (k % 30)] = 0.2 + 0.6 * (k % 2)

    root = tmp_path_factory.mktemp("onnx_wholebody")
    return _export_simcc(simcc_x, simcc_y, root / "wholebody.onnx")
