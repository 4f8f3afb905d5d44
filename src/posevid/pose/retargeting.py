"""Retarget a driving pose sequence onto a reference body (the person in the image to animate).

Why: a skeleton taken from another person has their proportions and position; DreamPose-style image
animation looks right only when the skeleton matches the reference subject. Two methods:

* ``linear``: one isotropic scale + translation (least squares over the joints visible in both the
  reference and the driving sequence's first detected frame), applied to every frame, like MimicMotion's
  alignment. Keeps the driving proportions.
* ``bones``: walks the COCO-17 kinematic tree from the mid-hip root and rebuilds every bone with the
  driving direction and the *reference* length. The root starts on the reference's mid-hips and moves
  like the driving root, scaled by the ratio of total bone lengths (reference / driving first frame), so
  the subject stays where it stands in the reference image. Reproduces the reference proportions (arm
  length, torso height) exactly. Joints whose bone cannot be rebuilt (a missing parent or reference
  length) fall back to the linear map.

Whole-body sequences (``wholebody133``, ``holistic143``) come out as COCO-WholeBody-133: the body as above,
and each hand, foot and the face moved with its parent joint (wrist, ankle, nose) and scaled about it by one
factor for the whole sequence: reference / driving length of the parent bone (forearm, shin; for the face the
four nose-eye-ear bones) in the anchor frame, or the body scale where a bone is not visible in both. So hands
keep the driving hand shape at the reference's forearm proportions, and a part that is absent stays absent.
With ``linear`` every point takes the same scale and translation.

Reference body: a single ``(17, 3)`` COCO pose, from a reference image (the estimator in image mode) or a
keypoints file (first frame with a person), see :func:`reference_pose`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from posevid.errors import InputError, NoPersonError
from posevid.pose.options import POSE_DEFAULTS
from posevid.pose.sequence import KeypointSequence
from posevid.utils.media import KEYPOINT_SUFFIXES

METHODS = ("bones", "linear")
ROOT, NECK = -1, -2  # virtual joints: mid-hips and mid-shoulders
# (parent, child) bones of COCO-17 in tree order (parents before children)
COCO17_BONES: tuple[tuple[int, int], ...] = (
    (ROOT, 11), (ROOT, 12), (ROOT, NECK), (NECK, 5), (NECK, 6), (NECK, 0), (0, 1), (0, 2), (1, 3), (2, 4),
    (5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16),
)  # fmt: skip
# whole-body parts: (points in COCO-WholeBody-133, parent COCO joint, the bones whose length ratio scales the part)
WHOLEBODY_PARTS: tuple[tuple[range, int, tuple[tuple[int, int], ...]], ...] = (
    (range(17, 20), 15, ((13, 15),)), (range(20, 23), 16, ((14, 16),)), (range(23, 91), 0, ((0, 1), (0, 2), (1, 3), (2, 4))),
    (range(91, 112), 9, ((7, 9),)), (range(112, 133), 10, ((8, 10),)),
)  # fmt: skip


def _joint(kp: np.ndarray, j: int, threshold: float) -> np.ndarray | None:
    """(x, y) of a real or virtual joint, or None when not confidently visible."""
    if j in (ROOT, NECK):
        a, b = (11, 12) if j == ROOT else (5, 6)
        if kp[a, 2] > threshold and kp[b, 2] > threshold:
            return (kp[a, :2] + kp[b, :2]) / 2
        return None
    return kp[j, :2].astype(np.float64) if kp[j, 2] > threshold else None


def bone_lengths(kp: np.ndarray, threshold: float = 0.3) -> dict[tuple[int, int], float]:
    """Lengths of the visible COCO-17 bones of one ``(17, 3)`` pose."""
    out = {}
    for parent, child in COCO17_BONES:
        p, c = _joint(kp, parent, threshold), _joint(kp, child, threshold)
        if p is not None and c is not None:
            out[(parent, child)] = float(np.hypot(*(c - p)))
    return out


def linear_fit(driving: np.ndarray, reference: np.ndarray, threshold: float = 0.3) -> tuple[float, np.ndarray]:
    """Scale ``s`` and translation ``t`` minimising ``sum |s * d + t - r|^2`` over joints visible in both."""
    both = (driving[:, 2] > threshold) & (reference[:, 2] > threshold)
    if both.sum() < 2:
        raise NoPersonError("retargeting needs at least 2 joints visible in both the reference and the driving pose")
    d, r = driving[both, :2].astype(np.float64), reference[both, :2].astype(np.float64)
    dm, rm = d.mean(axis=0), r.mean(axis=0)
    var = ((d - dm) ** 2).sum()
    scale = float(((d - dm) * (r - rm)).sum() / var) if var > 0 else 1.0
    scale = max(scale, 1e-6)
    return scale, rm - scale * dm


def retarget(
    driving: KeypointSequence,
    reference: np.ndarray,
    *,
    size: tuple[int, int],
    method: str = POSE_DEFAULTS.retarget_method,
    threshold: float = POSE_DEFAULTS.threshold,
) -> KeypointSequence:
    """Driving sequence (any format, first person) mapped onto the ``reference`` (17, 3) COCO body.

    ``size`` is the (W, H) of the reference frame; the result is COCO-17 in that frame.
    """
    if method not in METHODS:
        raise InputError(f"unknown retargeting method '{method}'", hint=f"use one of {', '.join(METHODS)}")
    reference = np.asarray(reference, dtype=np.float32)
    if reference.shape != (17, 3):
        raise InputError(f"reference pose must be COCO-17 (17, 3), got {reference.shape}")
    coco = driving.to_format("coco17").keypoints[:, 0]  # (T, 17, 3)
    present = (coco[..., 2] > threshold).sum(axis=1) >= 2
    if not present.any():
        raise NoPersonError(f"the driving pose sequence {driving.source or ''} has no frame with a visible person")
    first = int(np.argmax(present))
    scale, shift = linear_fit(coco[first], reference, threshold)
    out = coco.copy()
    out[..., :2] = coco[..., :2] * scale + shift
    info = {"method": method, "scale": scale, "shift": [float(v) for v in shift]}
    if method == "bones":
        ref_len = bone_lengths(reference, threshold)
        drv_len = bone_lengths(coco[first], threshold)
        common = set(ref_len) & set(drv_len)
        body_scale = sum(ref_len[b] for b in common) / max(sum(drv_len[b] for b in common), 1e-6) if common else scale
        ref_root, drv_root0 = _joint(reference, ROOT, threshold), _joint(coco[first], ROOT, threshold)
        if ref_root is not None and drv_root0 is not None:  # root anchored on the reference's hips
            root_scale, root_shift = body_scale, ref_root - body_scale * drv_root0
        else:
            root_scale, root_shift = scale, shift
        info.update(root_scale=float(root_scale), root_shift=[float(v) for v in root_shift])
        for t in range(len(coco)):
            out[t] = _rebuild(coco[t], out[t], ref_len, root_scale, root_shift, threshold)
    fmt = "coco17"
    if driving.format in ("wholebody133", "holistic143"):
        fmt = "wholebody133"
        scale_of = _part_scale(ref_len, drv_len, body_scale) if method == "bones" else (lambda bones: scale)
        out = _move_parts(driving.to_format("wholebody133").keypoints[:, 0], coco, out, scale_of, scale, shift)
    meta = dict(driving.meta, retarget=info)
    return KeypointSequence(out[:, None], fmt, size[0], size[1], driving.fps, driving.source, driving.frame_indices.copy(), meta)


def _part_scale(ref_len: dict, drv_len: dict, body_scale: float):
    """Scale of a part from its parent bones: reference / driving length over the bones known in both, else the body's."""

    def scale_of(bones: tuple[tuple[int, int], ...]) -> float:
        common = [b for b in bones if b in ref_len and b in drv_len]
        if not common:
            return body_scale
        return sum(ref_len[b] for b in common) / max(sum(drv_len[b] for b in common), 1e-6)

    return scale_of


def _move_parts(whole: np.ndarray, coco: np.ndarray, body: np.ndarray, scale_of, scale: float, shift: np.ndarray) -> np.ndarray:
    """``(T, 133, 3)``: the retargeted ``body`` (T, 17, 3) plus every part moved with its parent joint (see the module doc).

    A frame whose parent joint is absent (score 0) maps the part linearly; absent points stay (0, 0, 0).
    """
    out = whole.copy()
    out[:, :17] = body
    for points, parent, bones in WHOLEBODY_PARTS:
        idx = list(points)
        s = scale_of(bones)
        anchored = coco[:, parent, 2] > 0
        moved = body[:, None, parent, :2] + s * (whole[:, idx, :2] - coco[:, None, parent, :2])
        linear = whole[:, idx, :2] * scale + shift
        out[:, idx, :2] = np.where(anchored[:, None, None], moved, linear)
    out[out[..., 2] <= 0] = 0.0
    return out


def _rebuild(src: np.ndarray, linear: np.ndarray, ref_len: dict, scale: float, shift: np.ndarray, threshold: float) -> np.ndarray:
    """One frame of bone-length retargeting (``linear`` = the same frame under the linear map)."""
    new = linear.copy()
    placed: dict[int, np.ndarray] = {}
    root = _joint(src, ROOT, threshold)
    if root is None:
        return new
    placed[ROOT] = root * scale + shift
    for parent, child in COCO17_BONES:
        p_src, c_src = _joint(src, parent, threshold), _joint(src, child, threshold)
        if parent not in placed or p_src is None or c_src is None:
            continue
        vec = c_src - p_src
        norm = float(np.hypot(*vec))
        length = ref_len.get((parent, child))
        if length is None or norm < 1e-6:
            pos = placed[parent] + vec * scale  # keep the driving bone, linearly scaled
        else:
            pos = placed[parent] + vec / norm * length
        placed[child] = pos
        if child >= 0:
            new[child, :2] = pos
    return new


def reference_pose(
    path: str | os.PathLike, *, estimator: str = POSE_DEFAULTS.estimator, threshold: float = POSE_DEFAULTS.threshold,
    wholebody: bool = False
) -> tuple[np.ndarray, tuple[int, int]]:
    """COCO-17 reference pose and frame size from an image (run the estimator) or a keypoints file.

    ``wholebody=True``: the ``(133, 3)`` COCO-WholeBody pose instead, as :func:`~posevid.pose.wholebody_keypoints`
    gives it (the whole-body estimator on an image: MediaPipe Holistic for ``mediapipe``); what Wan-Animate's
    retargeting takes for the reference image. A body-only keypoints file gives absent face, hands and feet.
    """
    from posevid.pose.wholebody import wholebody_estimator, wholebody_keypoints

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"reference not found: {path}", hint="pass an image or a keypoints .json/.npz")
    if path.suffix.lower() in KEYPOINT_SUFFIXES:
        seq = KeypointSequence.load(path)
        present = np.flatnonzero(seq.present(threshold))
        if len(present) == 0:
            raise NoPersonError(f"no person in the reference keypoints file {path}")
        pose = wholebody_keypoints(seq)[present[0]] if wholebody else seq.to_format("coco17").keypoints[present[0], 0]
        return pose, (seq.width, seq.height)
    from PIL import Image, UnidentifiedImageError

    from posevid.pose.estimators import get_estimator
    from posevid.pose.formats import convert

    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError):
        raise InputError(f"cannot read the reference image {path}", hint="pass a PNG/JPEG image or a keypoints file") from None
    opts = {"static_image_mode": True} if estimator == "mediapipe" else {}
    name, opts = wholebody_estimator(estimator, opts) if wholebody else (estimator, opts)
    with get_estimator(name, **opts) as est:
        people = est(rgb)
        fmt = est.keypoint_format
    if len(people) == 0:
        raise NoPersonError(f"no person found in the reference image {path}", hint="use an image showing the whole person")
    areas = [np.ptp(p[p[:, 2] > 0, 0]) * np.ptp(p[p[:, 2] > 0, 1]) if (p[:, 2] > 0).sum() > 1 else 0 for p in people]
    person, size = people[int(np.argmax(areas))], (rgb.shape[1], rgb.shape[0])
    if wholebody:
        return wholebody_keypoints(KeypointSequence(person[None, None], fmt, size[0], size[1], 1.0))[0], size
    return convert(person, fmt, "coco17"), size
