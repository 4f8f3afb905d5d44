"""``posevid pose``: keypoints, skeleton video and overlay from any video, offline.

Outputs in ``--out DIR``: ``keypoints.json`` (and ``keypoints.npz`` with ``--npz``), ``skeleton.mp4`` (black
background, the chosen style; the input for ``posevid generate --pose``), ``overlay.mp4`` (skeleton over the
video, with ``--overlay``) and ``pose.json`` (settings, detection rate, empty-frame count, versions). Everything is written to a
staging folder first and moved into place at the end, so a failure leaves no partial output.
"""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """Extract the pose of the person in a video (mediapipe by default, fully offline), clean it up
(person choice, gap filling, lag-free smoothing), move the joints to where MMPose/COCO puts them, and render it
as a skeleton video.

examples:
  posevid pose dance.mp4 --out pose/                       # keypoints + FYP-style skeleton (--overlay: + overlay)
  posevid pose clip.mov --out pose/ --fps 8 --size 512x512 # 8 fps, center-cropped to 512x512
  posevid pose clip.mp4 --out pose/ --style openpose --format openpose18
  posevid pose drive.mp4 --out pose/ --retarget-to key_frame.png   # skeleton with the reference's body
"""


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        "pose", help="extract keypoints and a skeleton video from any video", description=DESCRIPTION, formatter_class=formatter_class
    )
    p.add_argument("video", help="input video (mp4, mov, avi, ...); phone rotation metadata is honoured")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; files inside are replaced)")
    p.add_argument(
        "--estimator",
        default="mediapipe",
        help="pose estimator: mediapipe (bundled, one person), dwpose or rtmpose (onnxruntime, multi-person)",
    )
    p.add_argument(
        "--det-model",
        metavar="ONNX",
        help="YOLOX detector .onnx for dwpose/rtmpose; if not given: $POSEVID_DET_MODEL, the cache, or a download",
    )
    p.add_argument(
        "--pose-model",
        metavar="ONNX",
        help="RTMPose/DWPose .onnx for dwpose/rtmpose; if not given: $POSEVID_POSE_MODEL, the cache, or a download",
    )
    p.add_argument(
        "--style",
        default="fyp",
        choices=["fyp", "mmpose", "openpose"],
        help="skeleton drawing style (fyp = what the Follow-Your-Pose checkpoint expects)",
    )
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--stride", type=int, default=1, help="keep every N-th frame")
    rate.add_argument("--fps", type=float, default=None, help="target frame rate (picks the nearest integer stride)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many (kept) frames")
    p.add_argument("--size", default=None, metavar="WxH", help="output size, e.g. 512x512; the video's own size if not given")
    p.add_argument("--fit", default="crop", choices=["crop", "pad"], help="how --size is reached: center-crop or pad with black")
    p.add_argument("--no-smooth", action="store_true", help="no smoothing (same as --smooth none)")
    p.add_argument("--min-cutoff", type=float, default=2.0, help="One-Euro minimum cut-off frequency in Hz (lower = smoother when still)")
    p.add_argument("--beta", type=float, default=50.0, help="One-Euro speed coefficient (higher = less lag on fast moves)")
    p.add_argument(
        "--person", default="largest", choices=["largest", "central", "all"], help="which person to keep when several are detected"
    )
    p.add_argument(
        "--fill", default="interpolate", choices=["interpolate", "hold", "none"], help="how frames with nobody detected are filled"
    )
    p.add_argument("--threshold", type=float, default=0.3, help="joints scoring below this are not drawn nor smoothed")
    p.add_argument(
        "--format", default="coco17", choices=["coco17", "openpose18", "blazepose33"], help="joint layout of the saved keypoints"
    )
    p.add_argument("--npz", action="store_true", help="also write keypoints.npz (exact float32 arrays)")
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay.mp4 (the default; kept for scripts)")
    add_mmpose_fit_arguments(p)
    p.add_argument("--retarget-to", metavar="IMAGE_OR_KEYPOINTS", help="map the skeleton onto the body in this image or keypoints file")
    p.add_argument(
        "--retarget-method", default="bones", choices=["bones", "linear"], help="bones: reference bone lengths; linear: scale + translation"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="estimate N contiguous segments in parallel processes (default: 2 on 2+ cores for videos of 120+ frames, "
        "else 1; 1 = a single pass). Boundaries are warmed up on 15 earlier frames, so tracks match a single pass closely",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def add_mmpose_fit_arguments(p) -> None:
    """The flags of issue 14 (closer to MMPose, faster outputs), in one place so other front ends can reuse them.

    ``posevid.pose.options.options_from_flags`` turns the parsed values into library options.
    """
    p.add_argument(
        "--smooth",
        default="zero-phase",
        choices=["zero-phase", "one-euro", "none"],
        help="zero-phase: lag-free Gaussian over past and future frames (width in seconds, adapts to fps); "
        "one-euro: the online filter of earlier versions (--min-cutoff, --beta); none: raw",
    )
    p.add_argument(
        "--limb-rule",
        default="auto",
        choices=["auto", "calibrated", "threshold"],
        help="which joints are drawn: calibrated = per-joint visibility thresholds fitted to MMPose renders; "
        "threshold = every joint scoring above --threshold (earlier versions); auto = calibrated for mediapipe",
    )
    p.add_argument(
        "--joint-correction",
        default="auto",
        choices=["auto", "on", "off"],
        help="move BlazePose landmarks to where COCO/MMPose puts the joints (fixed linear map); auto = on for --style fyp",
    )
    p.add_argument(
        "--overlay",
        action="store_true",
        help="also write overlay.mp4 (skeleton over the video; earlier versions wrote it by default). Costs a second decode "
        "and encode, ~7 ms CPU per frame at 360x480",
    )
    p.add_argument(
        "--preset",
        default="ultrafast",
        help="libx264 preset of the output videos (ultrafast = fastest, larger files; medium = earlier versions)",
    )


def run(args: argparse.Namespace) -> int:
    import contextlib
    import os
    import shutil
    import tempfile
    import time
    from pathlib import Path

    from posevid.errors import InputError
    from posevid.pose.extract import extract_keypoints, fit_sequence, prefetch
    from posevid.pose.geometry import FitTransform, parse_size
    from posevid.pose.options import options_from_flags
    from posevid.pose.outputs import write_pose_videos
    from posevid.pose.retarget import reference_pose, retarget
    from posevid.utils.outputs import write_sidecar
    from posevid.video import iter_frames

    size = parse_size(args.size)
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} exists and is not a folder")
    est_opts = {}
    if args.estimator != "mediapipe":
        from posevid.utils.extras import require

        require("onnxruntime", f"--estimator {args.estimator}")  # before any progress bar or worker starts
        est_opts = {"det_model": args.det_model, "pose_model": args.pose_model}
    elif args.det_model or args.pose_model:
        raise InputError("--det-model/--pose-model apply to --estimator dwpose or rtmpose only")
    opts = options_from_flags(
        smooth="none" if args.no_smooth else args.smooth, min_cutoff=args.min_cutoff, beta=args.beta, limb_rule=args.limb_rule,
        joint_correction=args.joint_correction, estimator=args.estimator, style=args.style, threshold=args.threshold,
    )  # fmt: skip
    ref = reference_pose(args.retarget_to) if args.retarget_to else None  # fail early on a bad reference
    with_overlay = args.overlay and not args.no_overlay

    t0 = time.perf_counter()
    seq = extract_keypoints(
        args.video, estimator=args.estimator, estimator_options=est_opts, stride=args.stride, target_fps=args.fps,
        max_frames=args.max_frames, smoothing=opts.smoothing, person=args.person, fill=args.fill, threshold=args.threshold,
        progress=not args.quiet, workers=args.workers,
    )  # fmt: skip
    t_extract = time.perf_counter() - t0
    meta = seq.meta
    if meta["empty_frames"]:
        how = "left empty" if args.fill == "none" else f"filled by {args.fill}"
        print(f"posevid pose: warning: no person found in {meta['empty_frames']} of {meta['num_frames']} frames ({how})", file=sys.stderr)

    raw_seq, seq = seq, opts.prepare(seq)  # corrected COCO-17 joints when the correction is on
    video_seq = fit_sequence(seq, size, args.fit)  # aligned with the (resized) video frames
    skel_seq = video_seq
    if ref is not None:
        ref_kp, ref_size = ref
        skel_seq = fit_sequence(retarget(seq, ref_kp, size=ref_size, method=args.retarget_method, threshold=args.threshold), size, args.fit)
    # BlazePose-33 output keeps the uncorrected landmarks (the correction yields COCO-17 joints only)
    saved = fit_sequence(raw_seq, size, args.fit) if args.format == raw_seq.format != seq.format and ref is None else skel_seq
    saved = saved.to_format(args.format)
    transform = FitTransform((seq.width, seq.height), (video_seq.width, video_seq.height), args.fit)
    stride = int(meta["stride"])

    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pose-", dir=out_dir))
    try:
        saved.save(staging / "keypoints.json")
        if args.npz:
            saved.save(staging / "keypoints.npz")
        t1 = time.perf_counter()
        frames = (transform.frame(f) for f in iter_frames(args.video, stride=stride, max_frames=len(seq))) if with_overlay else None
        write_pose_videos(
            skel_seq, staging / "skeleton.mp4", style=args.style, threshold=opts.draw_threshold,
            overlay_path=staging / "overlay.mp4" if with_overlay else None, video_seq=video_seq,
            frames=prefetch(frames) if frames is not None else None, preset=args.preset, progress=not args.quiet,
        )  # fmt: skip
        t_render = time.perf_counter() - t1
        settings = {
            "video": str(args.video), "estimator": args.estimator, "style": args.style, "stride": stride, "fps": seq.fps,
            "size": [skel_seq.width, skel_seq.height], "fit": args.fit, "smoothing": meta.get("smoothing"), "person": args.person,
            "limb_rule": opts.limb_rule, "joint_correction": opts.joint_correction, "preset": args.preset,
            "fill": args.fill, "threshold": args.threshold, "format": args.format, "max_frames": args.max_frames,
            "retarget_to": args.retarget_to, "retarget_method": args.retarget_method if args.retarget_to else None,
            "num_frames": meta["num_frames"], "detected_frames": meta["detected_frames"], "empty_frames": meta["empty_frames"],
            "filled_frames": meta["filled_frames"], "detection_rate": meta["detection_rate"],
            "workers": meta.get("workers", 1), "seconds": {"extract": round(t_extract, 2), "render": round(t_render, 2)},
            "outputs": sorted(p.name for p in staging.iterdir() if not p.name.startswith(".")) + ["pose.json"],
        }  # fmt: skip
        write_sidecar(staging / "pose", settings, kind="pose")
        for item in staging.iterdir():
            if not item.name.startswith("."):
                os.replace(item, out_dir / item.name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # only if empty
        raise
    shutil.rmtree(staging, ignore_errors=True)
    if not args.quiet:
        rate = meta["detection_rate"] * 100
        print(f"posevid pose: {meta['num_frames']} frames, person found in {rate:.1f}%, wrote {out_dir}/ "
              f"(keypoints.json, skeleton.mp4{', overlay.mp4' if with_overlay else ''}, pose.json)")  # fmt: skip
    return 0
