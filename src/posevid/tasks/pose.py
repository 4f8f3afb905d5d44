"""Keypoints, skeleton video and overlay from any video, as a library call: :func:`pose` with :class:`PoseSettings`.

A thin wrapper over :mod:`posevid.pose` (extraction, clean-up, rendering) that writes the outputs of
``posevid pose`` into one folder through a staging folder, so a failure leaves no partial output and a
re-run replaces the whole set (``pose.json`` lists it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posevid.pose.options import POSE_DEFAULTS as D  # the defaults the library shares, defined once one layer down
from posevid.utils.progress import Progress, no_progress


@dataclass
class PoseSettings:
    """Everything ``posevid pose`` can be told; the defaults here are the only ones (the flags, the app's pose tab and batch
    read them). Those the library functions share are :data:`posevid.pose.options.POSE_DEFAULTS`', read here."""

    video: str | None = None
    out: str | None = None
    estimator: str = D.estimator
    det_model: str | None = None
    pose_model: str | None = None
    style: str = D.style
    stride: int = D.stride
    fps: float | None = None
    max_frames: int | None = None
    size: str | None = None
    fit: str = D.fit
    no_smooth: bool = False
    min_cutoff: float = D.min_cutoff
    beta: float = D.beta
    person: str = D.person
    fill: str = D.fill
    threshold: float = D.threshold
    format: str | None = None  # joint layout of keypoints.json: coco17, or wholebody133 with --wholebody
    wholebody: bool = False  # body, feet, face and hands (COCO-WholeBody-133): MediaPipe Holistic, or all DWPose/RTMW joints
    npz: bool = False
    no_overlay: bool = False  # the default now; kept for scripts
    # issue 14 (closer to MMPose, faster outputs); posevid.pose.options resolves "auto"
    smooth: str = D.smooth  # zero-phase | one-euro (min_cutoff, beta) | none; the library's default too
    limb_rule: str = D.limb_rule  # auto | calibrated | threshold
    joint_correction: str = D.joint_correction  # auto | on | off
    overlay: bool = False
    preset: str = D.preset  # libx264 preset of the output videos
    retarget_to: str | None = None
    retarget_method: str = D.retarget_method
    workers: int | None = None
    quiet: bool = False


@dataclass
class PoseResult:
    out_dir: Path
    files: list[Path]
    meta: dict[str, Any]


def model_key(settings: PoseSettings) -> tuple:
    """What a pose job's estimator is made of (``posevid batch`` groups its jobs by it). Nothing is cached between jobs:
    an estimator tracks one video, and every job builds its own."""
    return ("pose", settings.estimator, settings.det_model, settings.pose_model, settings.wholebody)


def pose(settings: PoseSettings, *, progress: Progress = no_progress, warn=None) -> PoseResult:
    """Run one ``posevid pose`` job: keypoints.json (+ .npz), skeleton.mp4 (+ overlay.mp4) and pose.json in ``settings.out``."""
    import time

    from posevid.errors import InputError
    from posevid.pose.extract import extract_keypoints, fit_sequence, prefetch
    from posevid.pose.geometry import FitTransform
    from posevid.pose.options import options_from_flags
    from posevid.pose.outputs import write_pose_videos
    from posevid.pose.retargeting import reference_pose, retarget
    from posevid.pose.segments import worker_count
    from posevid.pose.wholebody import WHOLEBODY_FORMATS, part_presence, wholebody_estimator
    from posevid.utils.outputs import OutputSet, sidecar_payload
    from posevid.utils.sizes import parse_size
    from posevid.video import iter_frames

    size = parse_size(settings.size)
    if settings.max_frames is not None and settings.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {settings.max_frames}")
    out_dir = Path(settings.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} exists and is not a folder")
    keypoint_format = settings.format or ("wholebody133" if settings.wholebody else "coco17")
    if keypoint_format in WHOLEBODY_FORMATS and not settings.wholebody:
        raise InputError(f"--format {keypoint_format} needs --wholebody (face and hands are only estimated then)")
    est_opts = {}
    if settings.estimator != "mediapipe":
        from posevid.utils.extras import require

        require("onnxruntime", f"--estimator {settings.estimator}")  # before any progress bar or worker starts
        est_opts = {"det_model": settings.det_model, "pose_model": settings.pose_model}
    elif settings.det_model or settings.pose_model:
        raise InputError("--det-model/--pose-model apply to --estimator dwpose or rtmpose only")
    opts = options_from_flags(
        smooth="none" if settings.no_smooth else settings.smooth, min_cutoff=settings.min_cutoff, beta=settings.beta,
        limb_rule=settings.limb_rule, joint_correction=settings.joint_correction, estimator=settings.estimator,
        style=settings.style, threshold=settings.threshold,
    )  # fmt: skip
    ref = reference_pose(settings.retarget_to) if settings.retarget_to else None  # fail early on a bad reference
    estimator, est_opts = wholebody_estimator(settings.estimator, est_opts) if settings.wholebody else (settings.estimator, est_opts)
    with_overlay = settings.overlay and not settings.no_overlay

    t0 = time.perf_counter()
    progress("extract", 0, 1)
    seq = extract_keypoints(
        settings.video, estimator=estimator, estimator_options=est_opts, stride=settings.stride, target_fps=settings.fps,
        max_frames=settings.max_frames, smoothing=opts.smoothing, person=settings.person, fill=settings.fill,
        threshold=settings.threshold, progress=not settings.quiet, workers=settings.workers,
    )  # fmt: skip
    t_extract = time.perf_counter() - t0
    meta = seq.meta
    if meta["empty_frames"]:
        how = "left empty" if settings.fill == "none" else f"filled by {settings.fill}"
        (warn or (lambda msg: None))(f"no person found in {meta['empty_frames']} of {meta['num_frames']} frames ({how})")

    raw_seq, seq = seq, opts.prepare(seq)  # corrected COCO-17 joints when the correction is on
    video_seq = fit_sequence(seq, size, settings.fit)  # aligned with the (resized) video frames
    skel_seq = video_seq
    if ref is not None:
        ref_kp, ref_size = ref
        retargeted = retarget(seq, ref_kp, size=ref_size, method=settings.retarget_method, threshold=settings.threshold)
        skel_seq = fit_sequence(retargeted, size, settings.fit)
    # BlazePose-33 (Holistic-143) output keeps the uncorrected landmarks (the correction yields COCO joints only)
    keep_raw = keypoint_format == raw_seq.format != seq.format and ref is None
    saved = fit_sequence(raw_seq, size, settings.fit) if keep_raw else skel_seq
    saved = saved.to_format(keypoint_format)
    parts = part_presence(seq) if settings.wholebody else None
    transform = FitTransform((seq.width, seq.height), (video_seq.width, video_seq.height), settings.fit)
    stride = int(meta["stride"])

    sidecar = out_dir / "pose.json"
    with OutputSet(sidecar) as outputs:  # all files appear together and replace a previous run's whole set
        saved.save(outputs.path(out_dir / "keypoints.json"))
        if settings.npz:
            saved.save(outputs.path(out_dir / "keypoints.npz"))
        t1 = time.perf_counter()
        progress("render", 0, 1)
        frames = (transform.frame(f) for f in iter_frames(settings.video, stride=stride, max_frames=len(seq))) if with_overlay else None
        write_pose_videos(  # every style draws the body only (COCO-17 / OpenPose-18), also from whole-body keypoints
            skel_seq, outputs.path(out_dir / "skeleton.mp4"), style=settings.style, threshold=opts.draw_threshold,
            overlay_path=outputs.path(out_dir / "overlay.mp4") if with_overlay else None, video_seq=video_seq,
            frames=prefetch(frames) if frames is not None else None, preset=settings.preset, progress=not settings.quiet,
        )  # fmt: skip
        t_render = time.perf_counter() - t1
        record = {
            "video": str(settings.video), "estimator": settings.estimator, "style": settings.style, "stride": stride, "fps": seq.fps,
            "size": [skel_seq.width, skel_seq.height], "fit": settings.fit, "smoothing": meta.get("smoothing"), "person": settings.person,
            "limb_rule": opts.limb_rule, "joint_correction": opts.joint_correction, "preset": settings.preset,
            "fill": settings.fill, "threshold": settings.threshold, "format": keypoint_format, "max_frames": settings.max_frames,
            "wholebody": settings.wholebody, "parts": parts,
            "retarget_to": settings.retarget_to, "retarget_method": settings.retarget_method if settings.retarget_to else None,
            "num_frames": meta["num_frames"], "detected_frames": meta["detected_frames"], "empty_frames": meta["empty_frames"],
            "filled_frames": meta["filled_frames"], "detection_rate": meta["detection_rate"],
            "workers": worker_count(settings.workers, len(meta["segments"])),
            "seconds": {"extract": round(t_extract, 2), "render": round(t_render, 2)},
            "outputs": sorted(p.name for p in outputs.files) + ["pose.json"],
            "files": [str(p) for p in outputs.files] + [str(sidecar)],
        }  # fmt: skip
        payload = sidecar_payload(out_dir / "pose", record, kind="pose")
        payload["output"] = str(out_dir)  # the folder really written to
        outputs.path(sidecar).write_text(json.dumps(payload, indent=2) + "\n")
        outputs.commit(previous_sidecar=sidecar)  # a previous run's overlay.mp4 / keypoints.npz: the set is replaced whole
    progress("done", 1, 1)
    files = [out_dir / name for name in record["outputs"]]
    return PoseResult(out_dir=out_dir, files=files, meta=dict(meta, parts=parts) if parts else dict(meta))
