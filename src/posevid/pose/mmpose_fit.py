"""Output closer to the MMPose skeletons FYP was trained on: a COCO-17 joint correction and a limb rule.

**Joint correction.** COCO-17 joints from BlazePose-33 landmarks by a fixed linear map, fitted against MMPose.

Why: the released Follow-Your-Pose weights saw MMPose (HRNet, COCO-17) skeletons. BlazePose defines several
joints differently from COCO's annotation: its hips sit higher and closer together, its eyes and ears lie on
the face surface. Picking the 17 matching landmarks (``formats.blazepose33_to_coco17``) keeps those offsets.

The correction moves each COCO joint from its BlazePose namesake (the *base* landmark) by a fixed linear
combination of the offsets to a few related landmarks::

    coco_j = p_base + sum_k c_jk * (p_k - p_base)

The coefficients are scalars applied to x and y alike, so the map commutes with translation, scale and
rotation of the whole body (it does not depend on where the person stands or how big they are), and they are
shared by the left and right joint of a pair (the neighbours are mirrored), which keeps it symmetric and halves
the parameters. The score of a corrected joint is its base landmark's.

**Limb rule.** MMPose draws a joint (and the links between drawn joints) when HRNet's score passes 0.3; BlazePose's
*visibility* is a different quantity (is the landmark unoccluded?), and a 0.3 cut drops limbs MMPose draws, e.g.
the legs of a person bent over on stairs. :func:`draw_thresholds` gives one visibility threshold per COCO joint
(left and right shared), chosen so that "drawn by us" best matches "drawn by MMPose here" on the shared clips.

Both live in ``mmpose_fit.json`` next to this module; ``benchmarks/pose_calibrate.py`` fits them (on joints
recovered from MMPose renders of the shared Charades clips, see :mod:`posevid.pose.agreement`) and reports
leave-one-clip-out errors.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from posevid.errors import InputError
from posevid.pose.formats import BLAZE33_TO_COCO17

DATA_FILE = Path(__file__).with_name("mmpose_fit.json")

# BlazePose-33 landmarks whose offsets from the base move each *left* (or centre) COCO joint; right joints mirror them.
NEIGHBOURS: dict[str, tuple[int, ...]] = {
    "nose": (2, 5, 7, 8, 9, 10),  # eyes, ears, mouth corners
    "eye": (0, 1, 3, 5, 7),  # nose, inner/outer corners, the other eye, the same-side ear
    "ear": (0, 2, 3, 8, 11),  # nose, same-side eye + outer corner, the other ear, the same-side shoulder
    "shoulder": (12, 23, 7),  # the other shoulder, same-side hip, same-side ear
    "elbow": (11, 15),  # shoulder, wrist
    "wrist": (13, 17, 19, 21),  # elbow, pinky, index, thumb
    "hip": (24, 11, 12, 25),  # the other hip, both shoulders, same-side knee
    "knee": (23, 27),  # hip, ankle
    "ankle": (25, 29, 31),  # knee, heel, foot index
}
# COCO-17 index -> joint type; left joints are the odd indices from 1, right the even ones from 2
COCO_TYPES = ("nose", "eye", "eye", "ear", "ear", "shoulder", "shoulder", "elbow", "elbow", "wrist", "wrist",
              "hip", "hip", "knee", "knee", "ankle", "ankle")  # fmt: skip
_MIRROR = {1: 4, 2: 5, 3: 6, 4: 1, 5: 2, 6: 3, 7: 8, 8: 7, 9: 10, 10: 9}  # BlazePose face landmarks
_MIRROR.update({i: i + 1 if i % 2 else i - 1 for i in range(11, 33)})


def _mirror(index: int) -> int:
    return _MIRROR.get(index, index)


def neighbours_of(coco_joint: int) -> tuple[int, tuple[int, ...]]:
    """(base landmark, neighbour landmarks) of one COCO-17 joint; right-side joints use the mirrored landmarks."""
    base = BLAZE33_TO_COCO17[coco_joint]
    near = NEIGHBOURS[COCO_TYPES[coco_joint]]
    right = coco_joint > 0 and coco_joint % 2 == 0
    return base, tuple(_mirror(k) for k in near) if right else near


def design(kp33: np.ndarray, coco_joint: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``(N, 2, M)`` from the base to its M neighbours and the base positions ``(N, 2)`` for ``(N, 33, >=2)`` poses."""
    base, near = neighbours_of(coco_joint)
    p = np.asarray(kp33, dtype=np.float64)[..., :2]
    offsets = p[:, list(near), :] - p[:, None, base, :]  # (N, M, 2)
    return offsets.transpose(0, 2, 1), p[:, base]


@lru_cache(maxsize=4)
def _load(path: str | None) -> dict:
    return json.loads(Path(path or DATA_FILE).read_text())


def draw_thresholds(path: str | None = None) -> np.ndarray:
    """The calibrated limb rule: one visibility threshold per COCO-17 joint ``(17,)``."""
    per_type = _load(path)["draw_thresholds"]
    return np.array([per_type[t] for t in COCO_TYPES], np.float32)


def load_coefficients(path: str | None = None) -> dict[str, np.ndarray]:
    """Joint type -> coefficient vector (one per neighbour), from the shipped JSON file."""
    data = _load(path)
    coefs = {name: np.asarray(v, np.float64) for name, v in data["coefficients"].items()}
    for name, near in NEIGHBOURS.items():
        if name not in coefs or coefs[name].shape != (len(near),):
            raise InputError(f"{path or DATA_FILE}: coefficients for '{name}' missing or not {len(near)} long")
    return coefs


def blazepose33_to_coco17_corrected(kp33: np.ndarray, coefficients: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """``(..., 33, 3)`` BlazePose landmarks -> ``(..., 17, 3)`` COCO joints with the fitted correction applied."""
    kp = np.asarray(kp33, dtype=np.float32)
    if kp.shape[-2:] != (33, 3):
        raise InputError(f"expected (..., 33, 3) BlazePose keypoints, got {kp.shape}")
    coefs = coefficients if coefficients is not None else load_coefficients()
    flat = kp.reshape(-1, 33, 3)
    out = flat[:, list(BLAZE33_TO_COCO17), :].copy()
    for j in range(17):
        offsets, base = design(flat, j)
        out[:, j, :2] = (base + offsets @ coefs[COCO_TYPES[j]]).astype(np.float32)
    missing = out[..., 2] <= 0  # score 0 = not there (e.g. empty frames): keep the base position untouched
    out[missing] = flat[:, list(BLAZE33_TO_COCO17), :][missing]
    return out.reshape(*kp.shape[:-2], 17, 3)


def correct_sequence(seq, coefficients: dict[str, np.ndarray] | None = None):
    """BlazePose-33 as corrected COCO-17, Holistic-143 as COCO-WholeBody-133 with a corrected body (other layouts as is).

    For Holistic only the 17 body joints change; feet, face and hands are copied (``formats.convert``).
    """
    from posevid.pose.formats import convert
    from posevid.pose.sequence import KeypointSequence

    if seq.format == "blazepose33":
        kp, fmt = blazepose33_to_coco17_corrected(seq.keypoints, coefficients), "coco17"
    elif seq.format == "holistic143":
        kp, fmt = convert(seq.keypoints, "holistic143", "wholebody133"), "wholebody133"
        kp[..., :17, :] = blazepose33_to_coco17_corrected(seq.keypoints[..., :33, :], coefficients)
    else:
        return seq
    meta = dict(seq.meta, joint_correction=DATA_FILE.name)
    return KeypointSequence(kp, fmt, seq.width, seq.height, seq.fps, seq.source, seq.frame_indices.copy(), meta)


def fit_coefficients(samples: dict[str, tuple[np.ndarray, np.ndarray]], ridge: float = 1e-3) -> dict[str, np.ndarray]:
    """Ridge least squares per joint type from ``{type: (offsets (N, 2, M), residual target - base (N, 2))}``.

    ``ridge`` is relative to the mean squared offset, so it means the same for any frame size.
    """
    coefs = {}
    for name, (offsets, resid) in samples.items():
        a = offsets.reshape(-1, offsets.shape[-1])
        b = resid.reshape(-1)
        lam = ridge * float((a**2).mean()) * len(a)
        coefs[name] = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ b)
    return coefs
