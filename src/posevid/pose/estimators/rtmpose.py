"""Optional multi-person estimator: YOLOX person detector + RTMPose / DWPose on onnxruntime.

Why our own pre/post-processing instead of ``rtmlib``: rtmlib pulls numpy 2 and OpenCV 5, which break
mediapipe. The pipeline is small: letterbox -> YOLOX -> (grid decoding + NMS, unless the graph already has
NMS) -> per box a top-down affine crop -> RTMPose -> SimCC arg-max decoding -> back to frame pixels.

Model files: ``det_model=`` / ``pose_model=`` (CLI ``--det-model`` / ``--pose-model``), else the environment
variables ``POSEVID_DET_MODEL`` / ``POSEVID_POSE_MODEL``, else the cache ``<POSEVID_CACHE>/models/``; when
missing and online, they are downloaded once from their public URLs. Whole-body models (DWPose, RTMW: 133
joints in COCO-WholeBody order) are reduced to their first 17 joints, which are COCO-17, unless
``keypoints="wholebody"`` keeps all 133 (``wholebody133``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from posevid.errors import CheckpointError, InputError
from posevid.pose.estimators.base import EstimatorBase
from posevid.utils.hub import resolve_model_file

MODELS = {
    "dwpose": {
        "det": "https://huggingface.co/yzd-v/DWPose/resolve/main/yolox_l.onnx",
        "pose": "https://huggingface.co/yzd-v/DWPose/resolve/main/dw-ll_ucoco_384.onnx",
    },
    "rtmpose": {
        "det": "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk/yolox_m_8xb8-300e_humanart-c2c7a14a.zip",
        "pose": "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk/"
        "rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.zip",
    },
}
MEAN = np.array([123.675, 116.28, 103.53], np.float32)  # ImageNet RGB, as in the RTMPose configs
STD = np.array([58.395, 57.12, 57.375], np.float32)


def _session(path: Path, what: str, threads: int | None):
    import onnxruntime as ort  # checked by RTMPoseEstimator before any model file is fetched
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise CheckpointError(f"cannot load ONNX model {path}: {reason}", hint="the file is corrupt or not ONNX") from None


def letterbox(rgb: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """YOLOX input: BGR, resized to fit ``size`` (h, w) keeping aspect, top-left, padded with 114; CHW float32."""
    import cv2

    h, w = rgb.shape[:2]
    ratio = min(size[0] / h, size[1] / w)
    resized = cv2.resize(rgb[..., ::-1], (max(1, int(w * ratio)), max(1, int(h * ratio))), interpolation=cv2.INTER_LINEAR)
    out = np.full((size[0], size[1], 3), 114, np.uint8)
    out[: resized.shape[0], : resized.shape[1]] = resized
    return np.ascontiguousarray(out.transpose(2, 0, 1)[None], dtype=np.float32), ratio


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices by decreasing score."""
    order = np.argsort(-scores)
    keep: list[int] = []
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def decode_yolox(raw: np.ndarray, input_size: tuple[int, int], strides=(8, 16, 32)) -> tuple[np.ndarray, np.ndarray]:
    """Raw YOLOX head ``(N, 5 + C)`` per anchor -> person boxes (xyxy, input pixels) and scores."""
    grids, expanded = [], []
    for s in strides:
        hs, ws = input_size[0] // s, input_size[1] // s
        yv, xv = np.meshgrid(np.arange(hs), np.arange(ws), indexing="ij")
        grids.append(np.stack((xv, yv), -1).reshape(-1, 2))
        expanded.append(np.full((hs * ws, 1), s))
    grid = np.concatenate(grids).astype(np.float32)
    stride = np.concatenate(expanded).astype(np.float32)
    if len(grid) != len(raw):
        raise CheckpointError(f"detector output has {len(raw)} anchors, expected {len(grid)} for input {input_size}")
    xy = (raw[:, :2] + grid) * stride
    wh = np.exp(np.clip(raw[:, 2:4], -10, 10)) * stride
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    scores = raw[:, 4] * raw[:, 5]  # objectness x person-class probability
    return boxes, scores


def box_to_affine(box: np.ndarray, out_wh: tuple[int, int], padding: float = 1.25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-down crop: center/scale of the padded box at the model's aspect, and the 2x3 warp matrix."""
    x1, y1, x2, y2 = box[:4]
    center = np.array([(x1 + x2) / 2, (y1 + y2) / 2], np.float32)
    w, h = (x2 - x1) * padding, (y2 - y1) * padding
    aspect = out_wh[0] / out_wh[1]
    if w > h * aspect:
        h = w / aspect
    else:
        w = h * aspect
    scale = np.array([max(w, 1.0), max(h, 1.0)], np.float32)
    s = out_wh[0] / scale[0]
    matrix = np.array([[s, 0, out_wh[0] / 2 - s * center[0]], [0, s, out_wh[1] / 2 - s * center[1]]], np.float32)
    return center, scale, matrix


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float = 2.0) -> np.ndarray:
    """SimCC arg-max: ``(K, Wx)``, ``(K, Hy)`` -> ``(K, 3)`` (x, y in model-input pixels, score = min of maxima)."""
    x = np.argmax(simcc_x, axis=-1).astype(np.float32) / split_ratio
    y = np.argmax(simcc_y, axis=-1).astype(np.float32) / split_ratio
    score = np.minimum(simcc_x.max(axis=-1), simcc_y.max(axis=-1))
    return np.stack([x, y, np.clip(score, 0.0, 1.0)], axis=-1).astype(np.float32)


KEYPOINT_SETS = {"body": ("coco17", 17), "wholebody": ("wholebody133", 133)}


def model_files(
    name: str,
    det_model: str | os.PathLike | None = None,
    pose_model: str | os.PathLike | None = None,
    *,
    allow_download: bool = True,
) -> tuple[Path, Path]:
    """The detector and pose ``.onnx`` files of estimator ``name`` (``dwpose`` or ``rtmpose``): the given paths, else
    ``$POSEVID_DET_MODEL`` / ``$POSEVID_POSE_MODEL``, the cache or (unless ``allow_download`` is False) a one-time
    download; offline without them, one line.

    Public so that a caller about to decode a whole video first can find out before it starts (``wan-preprocess``)."""
    urls = MODELS.get(name, MODELS["rtmpose"])
    det = resolve_model_file(det_model, env="POSEVID_DET_MODEL", url=urls["det"], what=f"{name} detector", allow_download=allow_download)
    pose = resolve_model_file(pose_model, env="POSEVID_POSE_MODEL", url=urls["pose"], what=f"{name} pose", allow_download=allow_download)
    return det, pose


class RTMPoseEstimator(EstimatorBase):
    """YOLOX + RTMPose (or DWPose/RTMW) top-down estimator: COCO-17, or COCO-WholeBody-133, for every detected person."""

    keypoint_format = "coco17"

    def __init__(
        self,
        *,
        name: str = "rtmpose",
        det_model: str | os.PathLike | None = None,
        pose_model: str | os.PathLike | None = None,
        det_threshold: float = 0.3,
        nms_threshold: float = 0.45,
        max_persons: int = 10,
        threads: int | None = None,
        channel_order: str = "rgb",
        keypoints: str = "body",
        allow_download: bool = True,
    ) -> None:
        from posevid.utils.extras import require

        if keypoints not in KEYPOINT_SETS:
            raise InputError(f"keypoints must be one of {', '.join(KEYPOINT_SETS)}, got '{keypoints}'")
        self.keypoint_format, self.num_joints = KEYPOINT_SETS[keypoints]
        require("onnxruntime", f"the {name} pose estimator")
        self.name = name
        det_path, pose_path = model_files(name, det_model, pose_model, allow_download=allow_download)
        self.det = _session(det_path, name, threads)
        self.pose = _session(pose_path, name, threads)
        dshape = self.det.get_inputs()[0].shape
        self.det_size = (_dim(dshape[2], 640), _dim(dshape[3], 640))
        pshape = self.pose.get_inputs()[0].shape
        self.pose_wh = (_dim(pshape[3], 192), _dim(pshape[2], 256))
        self._check_joints(self.pose.get_outputs()[0].shape[1], pose_path)
        self.det_threshold, self.nms_threshold, self.max_persons = det_threshold, nms_threshold, max_persons
        if channel_order not in ("rgb", "bgr"):
            raise InputError(f"channel_order must be 'rgb' or 'bgr', got '{channel_order}'")
        # MMPose configs convert BGR->RGB before normalising with ImageNet RGB statistics, so the exported
        # graph expects RGB; some deployments feed BGR instead, hence the switch
        self.channel_order = channel_order

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        """Person boxes ``(N, 5)`` = x1, y1, x2, y2, score in frame pixels."""
        blob, ratio = letterbox(rgb, self.det_size)
        outputs = self.det.run(None, {self.det.get_inputs()[0].name: blob})
        if len(outputs) >= 2 and outputs[0].ndim == 3 and outputs[0].shape[-1] == 5:  # graph with NMS: dets + labels
            dets, labels = outputs[0][0], outputs[1][0]
            dets = dets[(labels == 0) & (dets[:, 4] > self.det_threshold)]
            boxes, scores = dets[:, :4] / ratio, dets[:, 4]
        else:
            boxes, scores = decode_yolox(outputs[0][0], self.det_size)
            keep = scores > self.det_threshold
            boxes, scores = boxes[keep] / ratio, scores[keep]
            order = nms(boxes, scores, self.nms_threshold)
            boxes, scores = boxes[order], scores[order]
        h, w = rgb.shape[:2]
        boxes = np.clip(boxes, 0, [w, h, w, h])
        return np.concatenate([boxes, scores[:, None]], axis=1)[: self.max_persons].astype(np.float32)

    def __call__(self, rgb_frame: np.ndarray) -> np.ndarray:
        import cv2

        people = []
        for box in self.detect(rgb_frame):
            center, scale, matrix = box_to_affine(box, self.pose_wh)
            crop = cv2.warpAffine(rgb_frame, matrix, self.pose_wh, flags=cv2.INTER_LINEAR)
            if self.channel_order == "bgr":
                crop = crop[..., ::-1]
            blob = ((crop.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]
            simcc_x, simcc_y = self.pose.run(None, {self.pose.get_inputs()[0].name: np.ascontiguousarray(blob)})[:2]
            ratio = simcc_x.shape[-1] / self.pose_wh[0]
            self._check_joints(simcc_x.shape[1], "the pose model")
            kp = decode_simcc(simcc_x[0], simcc_y[0], ratio)[: self.num_joints]
            kp[:, :2] = kp[:, :2] / np.array(self.pose_wh, np.float32) * scale + center - scale / 2
            people.append(kp)
        return np.stack(people) if people else np.zeros((0, self.num_joints, 3), np.float32)

    def _check_joints(self, count, model) -> None:
        """One line when the pose model has fewer joints than asked for (e.g. a 17-joint body model for whole-body)."""
        if isinstance(count, int) and count < self.num_joints:
            hint = "use a whole-body model (DWPose or RTMW, 133 joints)" if self.num_joints == 133 else "use an RTMPose/DWPose model"
            raise CheckpointError(f"{model} gives {count} joints, {self.keypoint_format} needs {self.num_joints}", hint=hint)


def _dim(value, default: int) -> int:
    return int(value) if isinstance(value, int) and value > 0 else default


def make_dwpose(**opts) -> RTMPoseEstimator:
    return RTMPoseEstimator(name="dwpose", **opts)


def make_rtmpose(**opts) -> RTMPoseEstimator:
    return RTMPoseEstimator(name="rtmpose", **opts)
