"""``posevid pose``: keypoints, skeleton video and overlay from any video, offline.

Outputs in ``--out DIR``: ``keypoints.json`` (and ``keypoints.npz`` with ``--npz``), ``skeleton.mp4`` (black
background, the chosen style; the input for ``posevid generate --pose``), ``overlay.mp4`` (skeleton over the
video, with ``--overlay``) and ``pose.json`` (settings, detection rate, empty-frame count, versions). Everything is written to a
staging folder first and moved into place at the end, so a failure leaves no partial output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from posevid.commands import _flags
from posevid.tasks.pose import PoseSettings

DESCRIPTION = """Extract the pose of the person in a video (mediapipe by default, fully offline), clean it up
(person choice, gap filling, lag-free smoothing), move the joints to where MMPose/COCO puts them, and render it
as a skeleton video.

examples:
  posevid pose dance.mp4 --out pose/                       # keypoints + FYP-style skeleton (--overlay: + overlay)
  posevid pose clip.mov --out pose/ --fps 8 --size 512x512 # 8 fps, center-cropped to 512x512
  posevid pose clip.mp4 --out pose/ --style openpose --format openpose18
  posevid pose drive.mp4 --out pose/ --retarget-to key_frame.png   # skeleton with the reference's body
  posevid pose dance.mp4 --out pose/ --wholebody           # + feet, face and hands (COCO-WholeBody-133 keypoints)
"""


def register(subparsers, formatter_class) -> None:
    d = PoseSettings()  # every flag's default: the task's
    p = subparsers.add_parser(
        "pose", help="extract keypoints and a skeleton video from any video", description=DESCRIPTION, formatter_class=formatter_class
    )
    p.add_argument("video", help="input video (mp4, mov, avi, ...); phone rotation metadata is honoured")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; files inside are replaced)")
    p.add_argument(
        "--estimator",
        default=d.estimator,
        help="pose estimator: mediapipe (bundled, one person), dwpose or rtmpose (onnxruntime, multi-person)",
    )
    p.add_argument(
        "--det-model",
        default=d.det_model,
        metavar="ONNX",
        help="YOLOX detector .onnx for dwpose/rtmpose; if not given: $POSEVID_DET_MODEL, the cache, or a download",
    )
    p.add_argument(
        "--pose-model",
        default=d.pose_model,
        metavar="ONNX",
        help="RTMPose/DWPose .onnx for dwpose/rtmpose; if not given: $POSEVID_POSE_MODEL, the cache, or a download",
    )
    p.add_argument(
        "--style",
        default=d.style,
        choices=["fyp", "mmpose", "openpose"],
        help="skeleton drawing style (fyp = what the Follow-Your-Pose checkpoint expects)",
    )
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--stride", type=int, default=d.stride, help="keep every N-th frame")
    rate.add_argument("--fps", type=float, default=d.fps, help="target frame rate (picks the nearest integer stride)")
    p.add_argument("--max-frames", type=int, default=d.max_frames, help="stop after this many (kept) frames")
    p.add_argument("--size", default=d.size, metavar="WxH", help="output size, e.g. 512x512; the video's own size if not given")
    p.add_argument("--fit", default=d.fit, choices=["crop", "pad"], help="how --size is reached: center-crop or pad with black")
    p.add_argument("--no-smooth", action="store_true", default=d.no_smooth, help="no smoothing (same as --smooth none)")
    p.add_argument(
        "--min-cutoff",
        type=float,
        default=d.min_cutoff,
        help="One-Euro minimum cut-off frequency in Hz (lower = smoother when still)",
    )
    p.add_argument("--beta", type=float, default=d.beta, help="One-Euro speed coefficient (higher = less lag on fast moves)")
    p.add_argument(
        "--person", default=d.person, choices=["largest", "central", "all"], help="which person to keep when several are detected"
    )
    p.add_argument(
        "--fill", default=d.fill, choices=["interpolate", "hold", "none"], help="how frames with nobody detected are filled"
    )
    p.add_argument("--threshold", type=float, default=d.threshold, help="joints scoring below this are not drawn nor smoothed")
    p.add_argument(
        "--format",
        default=d.format,
        choices=["coco17", "openpose18", "blazepose33", "wholebody133"],
        help="joint layout of the saved keypoints (default: coco17, or wholebody133 with --wholebody)",
    )
    p.add_argument(
        "--wholebody",
        action="store_true",
        default=d.wholebody,
        help="also estimate feet, face (68 points) and both hands: COCO-WholeBody-133 keypoints (mediapipe: MediaPipe Holistic, "
        "bundled; dwpose/rtmpose: all 133 joints of a DWPose/RTMW model). The skeleton video stays body-only",
    )
    p.add_argument("--npz", action="store_true", default=d.npz, help="also write keypoints.npz (exact float32 arrays)")
    p.add_argument("--no-overlay", action="store_true", default=d.no_overlay,
                   help="do not write overlay.mp4 (the default; kept for scripts)")
    add_mmpose_fit_arguments(p)
    p.add_argument("--retarget-to", default=d.retarget_to, metavar="IMAGE_OR_KEYPOINTS",
                   help="map the skeleton onto the body in this image or keypoints file")
    p.add_argument(
        "--retarget-method", default=d.retarget_method, choices=["bones", "linear"],
        help="bones: reference bone lengths; linear: scale + translation",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=d.workers,
        metavar="N",
        help="share the video's segments (cut by its frame count alone: 1 below 120 frames, else 2, 4, ... of at most "
        "600) between N processes (default: 2 on 2+ cores). Speed only: the keypoints are the same for every N",
    )
    _flags.add_quiet(p, default=d.quiet)
    p.set_defaults(func=run)


def add_mmpose_fit_arguments(p) -> None:
    """The flags of issue 14 (closer to MMPose, faster outputs), in one place so other front ends can reuse them.

    ``posevid.pose.options.options_from_flags`` turns the parsed values into library options; the defaults are
    :class:`~posevid.tasks.pose.PoseSettings`'s.
    """
    d = PoseSettings()
    p.add_argument(
        "--smooth",
        default=d.smooth,
        choices=["zero-phase", "one-euro", "none"],
        help="zero-phase: lag-free Gaussian over past and future frames (width in seconds, adapts to fps); "
        "one-euro: the online filter of earlier versions (--min-cutoff, --beta); none: raw",
    )
    p.add_argument(
        "--limb-rule",
        default=d.limb_rule,
        choices=["auto", "calibrated", "threshold"],
        help="which joints are drawn: calibrated = per-joint visibility thresholds fitted to MMPose renders; "
        "threshold = every joint scoring above --threshold (earlier versions); auto = calibrated for mediapipe",
    )
    p.add_argument(
        "--joint-correction",
        default=d.joint_correction,
        choices=["auto", "on", "off"],
        help="move BlazePose landmarks to where COCO/MMPose puts the joints (fixed linear map); auto = on for --style fyp",
    )
    p.add_argument(
        "--overlay",
        action="store_true",
        default=d.overlay,
        help="also write overlay.mp4 (skeleton over the video; earlier versions wrote it by default). Costs a second decode "
        "and encode, ~7 ms CPU per frame at 360x480",
    )
    p.add_argument(
        "--preset",
        default=d.preset,
        help="libx264 preset of the output videos (ultrafast = fastest, larger files; medium = earlier versions)",
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """``posevid pose ARGV`` parsed, not run (a batch job's line): a bad flag or value is a one-line InputError."""
    from posevid.commands.fields import command_parser

    return command_parser("pose").parse_args(list(argv))


def collect_settings(args: argparse.Namespace) -> PoseSettings:
    """Parsed flags -> the task's settings (a batch runner calls this, then ``tasks.pose.pose``): each flag fills the
    settings field of its own name."""
    return _flags.settings_from_args(PoseSettings, args)


def run(args: argparse.Namespace) -> int:
    from posevid.tasks.pose import pose

    settings = collect_settings(args)
    result = pose(settings, warn=lambda msg: print(f"posevid pose: warning: {msg}", file=sys.stderr))
    if not settings.quiet:
        rate = result.meta["detection_rate"] * 100
        names = ", ".join(p.name for p in result.files)
        parts = result.meta.get("parts") or {}
        share = {name: 100 * parts.get(name, 0) / max(parts.get("num_frames", 0), 1) for name in ("face", "left_hand", "right_hand")}
        found = "".join(f", {name.replace('_', ' ')} in {value:.1f}%" for name, value in share.items()) if parts else ""
        print(f"posevid pose: {result.meta['num_frames']} frames, person found in {rate:.1f}%{found}, wrote {result.out_dir}/ ({names})")
    return 0
