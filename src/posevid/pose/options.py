"""What the ``posevid pose`` flags of issue 14 mean for the library: smoothing, limb rule, joint correction.

Kept apart from the CLI so every front end (CLI, app, task layer) resolves ``auto`` the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from posevid.errors import InputError

if TYPE_CHECKING:
    import numpy as np

# The one default smoother: of extract_keypoints / extract_keypoints_from_frames (``smoothing=``), of ``posevid pose``
# (PoseSettings.smooth), of skeleton_video_for and the app. Zero-phase: lag-free and nearer MMPose (docs/pose.md).
# numpy-free module: the CLI reads these defaults to build its flags.
DEFAULT_SMOOTH = "zero-phase"
ONE_EURO_DEFAULTS = {"min_cutoff": 2.0, "beta": 50.0, "d_cutoff": 1.0}  # ``--smooth one-euro``: Hz, unit-free speed gain, Hz
LIMB_RULES = ("auto", "calibrated", "threshold")
CORRECTIONS = ("auto", "on", "off")


@dataclass(frozen=True)
class PoseDefaults:
    """The one definition of the pose defaults that the library functions (``extract_keypoints``, ``options_from_flags``,
    ``fit_sequence``, ``write_pose_videos``, ``retarget``, the clean-up steps) and ``posevid pose``
    (:class:`~posevid.tasks.pose.PoseSettings`, whose fields read them) share. The building blocks cannot import the
    task, so the defaults live here, one layer down."""

    estimator: str = "mediapipe"
    stride: int = 1
    smooth: str = DEFAULT_SMOOTH
    min_cutoff: float = ONE_EURO_DEFAULTS["min_cutoff"]
    beta: float = ONE_EURO_DEFAULTS["beta"]
    person: str = "largest"  # largest | central | all
    fill: str = "interpolate"  # interpolate | hold | none
    threshold: float = 0.3  # joints scoring below are neither drawn nor smoothed
    style: str = "fyp"  # the skeleton style the Follow-Your-Pose checkpoint expects
    fit: str = "crop"  # crop | pad, to reach a size
    limb_rule: str = "auto"
    joint_correction: str = "auto"
    retarget_method: str = "bones"
    preset: str = "ultrafast"  # libx264 preset of the pose videos


POSE_DEFAULTS = PoseDefaults()


@dataclass
class PoseOptions:
    smoothing: str | dict | None  # for ``extract_keypoints(smoothing=...)``
    limb_rule: str  # "calibrated" or "threshold" (resolved)
    joint_correction: bool  # resolved
    draw_threshold: float | np.ndarray  # one score, or one per COCO-17 joint

    def prepare(self, seq):
        """The sequence to draw: corrected COCO-17 joints, or COCO-17 for the per-joint limb rule, else as is.

        Whole-body tracks stay whole-body: Holistic-143 becomes COCO-WholeBody-133 (body corrected or not).
        """
        from posevid.pose.mmpose_fit import correct_sequence

        if self.joint_correction:
            return correct_sequence(seq)
        if seq.format == "holistic143":
            return seq.to_format("wholebody133")
        if self.limb_rule == "calibrated" and seq.format not in ("coco17", "wholebody133"):
            return seq.to_format("coco17")
        return seq


def options_from_flags(
    *, smooth: str = POSE_DEFAULTS.smooth, min_cutoff: float = POSE_DEFAULTS.min_cutoff, beta: float = POSE_DEFAULTS.beta,
    limb_rule: str = POSE_DEFAULTS.limb_rule, joint_correction: str = POSE_DEFAULTS.joint_correction,
    estimator: str = POSE_DEFAULTS.estimator, style: str = POSE_DEFAULTS.style, threshold: float = POSE_DEFAULTS.threshold,
) -> PoseOptions:  # fmt: skip
    """Resolve the flags. ``auto``: the calibrated limb rule for mediapipe (its score is a visibility, which the
    calibration is about) and the joint correction for mediapipe with the ``fyp`` style (what FYP was trained on)."""
    from posevid.pose.mmpose_fit import draw_thresholds

    if limb_rule not in LIMB_RULES:
        raise InputError(f"unknown limb rule '{limb_rule}'", hint=f"use one of {', '.join(LIMB_RULES)}")
    if joint_correction not in CORRECTIONS:
        raise InputError(f"unknown joint correction '{joint_correction}'", hint=f"use one of {', '.join(CORRECTIONS)}")
    smoothing = {"min_cutoff": min_cutoff, "beta": beta} if smooth == "one-euro" else smooth
    blaze = estimator in ("mediapipe", "mediapipe-holistic")  # BlazePose visibilities and landmarks
    rule = ("calibrated" if blaze else "threshold") if limb_rule == "auto" else limb_rule
    if rule == "calibrated" and not blaze:
        raise InputError("--limb-rule calibrated is fitted to mediapipe visibilities", hint="use --limb-rule threshold with this estimator")
    correct = (blaze and style == "fyp") if joint_correction == "auto" else joint_correction == "on"
    if correct and not blaze:
        raise InputError("--joint-correction on needs BlazePose landmarks (--estimator mediapipe)", hint="use --joint-correction off")
    return PoseOptions(smoothing, rule, correct, draw_thresholds() if rule == "calibrated" else threshold)
