"""``posevid wan-preprocess``: the input folder of Wan2.2-Animate from a driving video and a reference image, offline.

Writes into ``--out DIR`` what Wan's ``generate.py --src_root_path DIR`` and ComfyUI workflows read:
``src_pose.mp4``, ``src_face.mp4``, ``src_ref.png`` (and ``src_bg.mp4``, ``src_mask.mp4`` with ``--mode replace``),
plus ``preview.mp4`` (frame, pose and face side by side) and ``wan_preprocess.json`` (settings, report, versions).
Everything appears together at the end; a failure leaves nothing behind.
"""

from __future__ import annotations

import argparse
import sys

from posevid.commands import _flags
from posevid.errors import InputError
from posevid.tasks.wan_preprocess import SOURCE_FPS, WanPreprocessSettings, output_fps

D = WanPreprocessSettings()  # the defaults, defined once in the task

DESCRIPTION = """Turn a driving video and a reference image into Wan2.2-Animate's inputs: the pose video (Wan's drawing of
body and hands), the 512x512 face video, the reference, and in replace mode the background and mask videos.
Whole-body keypoints come from MediaPipe Holistic, bundled with posevid (nothing is downloaded), or from
DWPose/RTMW ONNX files; the person mask of replace mode from MediaPipe's selfie segmentation.

examples:
  posevid wan-preprocess dance.mp4 --image me.png --out wan_in/                   # animate mode, 30 fps
  posevid wan-preprocess dance.mp4 --image me.png --out wan_in/ --retarget        # the pose with your body's proportions
  posevid wan-preprocess dance.mp4 --image me.png --out wan_in/ --mode replace    # + src_bg.mp4, src_mask.mp4
"""


def _fps(value: str) -> float | None:
    """``--fps``: a rate, or ``source`` (None) for the driving video's own."""
    try:
        return output_fps(value)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers, formatter_class) -> None:
    from posevid.pose.cleanup import FILL_MODES, PERSON_MODES, SMOOTHERS
    from posevid.pose.options import CORRECTIONS
    from posevid.wan import MODES

    p = subparsers.add_parser(
        "wan-preprocess", help="driving video + image -> Wan2.2-Animate's input folder (pose, face, mask videos)",
        description=DESCRIPTION, formatter_class=formatter_class,
    )  # fmt: skip
    p.add_argument("video", help="the driving video (mp4, mov, ...): the motion to follow")
    p.add_argument("--image", required=True, metavar="IMG", help="reference image of the character (written as src_ref.png)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; a previous run's files are replaced)")
    p.add_argument(
        "--mode", choices=MODES, default=D.mode,
        help="animate: the character moves like the video; replace: the character replaces the person in the video",
    )  # fmt: skip
    p.add_argument(
        "--retarget", action="store_true", default=D.retarget,
        help="animate mode: rescale the driving poses to the reference's body proportions (needs a person in --image)",
    )  # fmt: skip
    p.add_argument(
        "--fps", type=_fps, default=D.fps, metavar=f"N|{SOURCE_FPS}",
        help=f"frame rate of the outputs; '{SOURCE_FPS}' keeps the driving video's (Wan's --fps -1)",
    )  # fmt: skip
    p.add_argument("--area", default=D.area, metavar="WxH", help="Wan's resolution area: the pixel budget of the pose video")
    p.add_argument("--max-frames", type=int, default=D.max_frames, metavar="N", help="keep only the first N output frames")

    e = p.add_argument_group("keypoints")
    e.add_argument(
        "--estimator", default=D.estimator,
        help="mediapipe: MediaPipe Holistic, bundled; dwpose or rtmpose: whole-body DWPose/RTMW ONNX files (onnxruntime)",
    )  # fmt: skip
    e.add_argument("--det-model", metavar="ONNX", help="YOLOX detector .onnx for dwpose/rtmpose")
    e.add_argument("--pose-model", metavar="ONNX", help="whole-body DWPose/RTMW .onnx for dwpose/rtmpose")
    e.add_argument(
        "--body-only", action="store_true", default=D.body_only,
        help="body keypoints only (faster): no hands in the pose video, face boxes from the head points",
    )  # fmt: skip
    e.add_argument(
        "--person", default=D.person, choices=[m for m in PERSON_MODES if m != "all"],
        help="which person to follow when several are detected",
    )  # fmt: skip
    e.add_argument("--fill", default=D.fill, choices=FILL_MODES, help="how frames with nobody detected are filled")
    e.add_argument("--smooth", default=D.smooth, choices=SMOOTHERS, help="keypoint smoothing, as posevid pose's --smooth")
    e.add_argument("--min-cutoff", type=float, default=D.min_cutoff, help="One-Euro minimum cut-off frequency in Hz (--smooth one-euro)")
    e.add_argument("--beta", type=float, default=D.beta, help="One-Euro speed coefficient (--smooth one-euro)")
    e.add_argument("--threshold", type=float, default=D.threshold, help="keypoints scoring below this are not smoothed")
    e.add_argument(
        "--joint-correction", default=D.joint_correction, choices=CORRECTIONS,
        help="move MediaPipe's joints to where COCO-trained models (like Wan's ViTPose) put them; auto = on for mediapipe",
    )  # fmt: skip

    o = p.add_argument_group("outputs")
    o.add_argument("--no-preview", action="store_true", help="do not write preview.mp4")
    o.add_argument(
        "--preset", default=D.preset, help="libx264 preset of the videos (ultrafast = fastest, larger files; medium = smaller, slower)"
    )
    _flags.add_quiet(o, default=D.quiet)
    p.set_defaults(func=run)


def collect_settings(args: argparse.Namespace) -> WanPreprocessSettings:
    """Parsed flags -> the task's settings (``tasks.wan_preprocess.wan_preprocess`` runs them)."""
    return _flags.settings_from_args(WanPreprocessSettings, args, preview=not args.no_preview)


def run(args: argparse.Namespace) -> int:
    from posevid.tasks.wan_preprocess import wan_preprocess

    result = wan_preprocess(collect_settings(args))
    info, report = result.info, result.inputs.report
    for note in info.notes:
        print(f"posevid wan-preprocess: note: {note}", file=sys.stderr)
    if not args.quiet:
        parts = info.parts
        share = ", ".join(f"{name.replace('_', ' ')} in {100 * parts.get(name, 0) / max(parts['num_frames'], 1):.0f}%"
                          for name in ("face", "left_hand", "right_hand"))  # fmt: skip
        w, h = report.pose_size
        names = ", ".join(p.name for p in result.files)
        print(
            f"posevid wan-preprocess: {report.frames} frames at {info.fps:g} fps ({report.mode} mode, pose video {w}x{h}; {share}), "
            f"wrote {result.out_dir}/ ({names})"
        )
    return 0
