"""Wan2.2-Animate's input folder from a driving video and a reference image, offline: :func:`wan_preprocess`.

:func:`wan_inputs` does the work in memory (the Wan-Animate backbone of ``posevid animate`` calls it);
:func:`wan_preprocess` writes its result as the folder Wan's ``generate.py --src_root_path`` and ComfyUI workflows
read. The steps, each a library function:

1. the driving video is decoded at the frames Wan keeps for the target fps (:func:`posevid.wan.frame_indices` of
   :func:`posevid.wan.target_frame_count`; a video shorter than one output frame is a one-line error);
2. whole-body keypoints of those frames (:mod:`posevid.pose`: MediaPipe Holistic, bundled, or DWPose/RTMW ONNX
   files; ``body_only``: the body model only, faces then come from the head points), one person, gaps filled
   and smoothed as ``posevid pose`` does it, with its defaults; nobody in any frame is a one-line error;
3. the reference image's keypoints when retargeting (a reference without a person is a one-line error);
4. :func:`posevid.wan.preprocess`: face boxes and crops, the pose drawing, retargeting, replace mode's person
   masks (MediaPipe selfie segmentation) and backgrounds, exactly as Wan's official code does them.

The folder: ``src_pose.mp4``, ``src_face.mp4``, ``src_ref.png`` (and ``src_bg.mp4``, ``src_mask.mp4`` in replace
mode) at the target fps, H.264 (yuv420p, as Wan's moviepy writes them), plus ``preview.mp4`` (frame, pose and face
side by side) and the sidecar ``wan_preprocess.json``. All appear together through one
:class:`~posevid.utils.outputs.OutputSet`: a failure leaves nothing, a re-run replaces the whole set.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posevid.errors import InputError, NoPersonError
from posevid.tasks.pose import PoseSettings
from posevid.utils.progress import Progress, no_progress, progress_bar
from posevid.wan.preprocess import DEFAULT_AREA, MODES, WanInputs

WAN_FPS = 30.0  # Wan's --fps default
FILES = {"pose": "src_pose.mp4", "face": "src_face.mp4", "reference": "src_ref.png", "background": "src_bg.mp4", "mask": "src_mask.mp4"}
PREVIEW = "preview.mp4"
SIDECAR = "wan_preprocess.json"
SOURCE_FPS = "source"  # fps="source" (or None): keep the driving video's own rate, Wan's --fps -1
_POSE = PoseSettings  # person choice, gap filling and smoothing: posevid pose's defaults, defined there once


@dataclass
class WanPreprocessSettings:
    """Everything ``posevid wan-preprocess`` can be told; the defaults here are the only ones."""

    video: str | None = None  # the driving video
    image: str | None = None  # the reference image (src_ref.png)
    out: str | None = None  # the folder to write (wan_preprocess only)
    mode: str = MODES[0]  # animate | replace
    retarget: bool = False  # animate mode: rescale the driving poses to the reference's body
    fps: float | str | None = WAN_FPS  # output frame rate; None or "source": the driving video's own
    area: str = f"{DEFAULT_AREA[0]}x{DEFAULT_AREA[1]}"  # Wan's resolution_area, WIDTHxHEIGHT
    max_frames: int | None = None  # keep at most this many output frames (the first ones)
    estimator: str = _POSE.estimator  # mediapipe (Holistic, bundled) | dwpose | rtmpose (ONNX files)
    det_model: str | None = None  # dwpose/rtmpose: detector .onnx
    pose_model: str | None = None  # dwpose/rtmpose: whole-body pose .onnx
    body_only: bool = False  # body keypoints only (faster): face boxes from the head points, no hands
    person: str = _POSE.person
    fill: str = _POSE.fill
    smooth: str = _POSE.smooth
    min_cutoff: float = _POSE.min_cutoff
    beta: float = _POSE.beta
    threshold: float = _POSE.threshold
    joint_correction: str = _POSE.joint_correction  # auto = MediaPipe's joints moved to where COCO puts them
    preview: bool = True  # also write preview.mp4
    preset: str | None = _POSE.preset  # libx264 preset of the written videos (None: the encoder's default, medium)
    quiet: bool = False


@dataclass
class WanPreprocessInfo:
    """What :func:`wan_inputs` found and did besides the arrays: for the user (``notes``) and the sidecar."""

    video: str
    image: str
    source_fps: float
    source_frames: int
    fps: float  # of the outputs
    frame_indices: np.ndarray  # (T,) source frame of each output frame
    keypoints: np.ndarray  # (T, 133, 3) COCO-WholeBody pixels of the decoded frames, what preprocess was given
    reference_keypoints: np.ndarray | None  # (1, 133, 3) pixels of the reference, when retargeting
    pose: dict[str, Any]  # estimator and clean-up: detected / empty / filled frames, smoothing, person
    parts: dict[str, int]  # output frames with a face and with each hand
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The JSON-able part (no keypoint arrays)."""
        skip = {"keypoints", "reference_keypoints", "frame_indices"}
        out = {k: v for k, v in asdict(self).items() if k not in skip}
        out["frame_indices"] = [int(i) for i in self.frame_indices]
        return out


@dataclass
class WanPreprocessResult:
    out_dir: Path
    files: list[Path]
    inputs: WanInputs
    info: WanPreprocessInfo


@dataclass(frozen=True)
class _Checked:
    fps: float | None  # None: the source's
    area: tuple[int, int]
    estimator: str  # the estimator to run (whole-body variant unless body_only)
    options: dict[str, Any]
    pose: Any  # posevid.pose.options.PoseOptions: smoothing and joint correction resolved


MIN_AREA_SIDE = 16  # smaller budgets leave no 16-pixel block for the model


def parse_area(text: str) -> tuple[int, int]:
    """``"1280x720"`` -> (1280, 720): posevid's one ``WxH`` reader (:func:`posevid.utils.sizes.parse_size`), at least
    :data:`MIN_AREA_SIDE` per side; a one-line error otherwise."""
    from posevid.utils.sizes import parse_size

    size = parse_size(text, flag="--area")
    if size is None:
        raise InputError("--area must look like WIDTHxHEIGHT (e.g. 1280x720), got nothing")
    if min(size) < MIN_AREA_SIDE:
        raise InputError(f"--area {text} is too small (at least {MIN_AREA_SIDE} pixels per side)")
    return size.width, size.height


def output_fps(value: float | str | None) -> float | None:
    """The ``fps`` setting as a rate, or None for the source's own (``None`` or ``"source"``)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == SOURCE_FPS):
        return None
    try:
        fps = float(value)
    except (TypeError, ValueError):
        raise InputError(f"--fps must be a number or '{SOURCE_FPS}', got {value!r}") from None
    if not fps > 0:
        raise InputError(f"--fps must be > 0, got {value!r}", hint=f"or '{SOURCE_FPS}' for the driving video's rate")
    return fps


def validate(settings: WanPreprocessSettings, *, need_out: bool = False) -> _Checked:
    """Every cheap check (no model, no decoding): a mistake costs nothing."""
    from posevid.pose.cleanup import FILL_MODES, PERSON_MODES, SMOOTHERS
    from posevid.pose.estimators import available_estimators
    from posevid.pose.options import options_from_flags
    from posevid.pose.wholebody import wholebody_estimator

    for value, what, flag in ((settings.video, "driving video", "VIDEO"), (settings.image, "reference image", "--image")):
        if not value:
            raise InputError(f"no {what} given", hint=f"pass {flag}")
        if not Path(value).is_file():
            raise InputError(f"{what} not found: {value}", hint=f"check {flag}")
    if need_out:
        if not settings.out:
            raise InputError("no output folder given", hint="pass --out DIR")
        if Path(settings.out).exists() and not Path(settings.out).is_dir():
            raise InputError(f"--out {settings.out} exists and is not a folder")
    if settings.mode not in MODES:
        raise InputError(f"unknown Wan-Animate mode {settings.mode!r}", hint=f"choose one of {', '.join(MODES)}")
    if settings.retarget and settings.mode != "animate":
        raise InputError("retargeting works in animate mode only", hint="drop --retarget or use --mode animate")
    if settings.max_frames is not None and settings.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {settings.max_frames}")
    one_person = tuple(m for m in PERSON_MODES if m != "all")  # "all" keeps several people; Wan's inputs follow one
    for value, allowed, flag in ((settings.person, one_person, "--person"), (settings.fill, FILL_MODES, "--fill"),
                                 (settings.smooth, SMOOTHERS, "--smooth")):  # fmt: skip
        if value not in allowed:
            raise InputError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")
    if settings.estimator not in available_estimators():
        raise InputError(f"unknown pose estimator '{settings.estimator}'", hint=f"use one of {', '.join(available_estimators())}")
    options: dict[str, Any] = {}
    if settings.estimator in ("dwpose", "rtmpose"):
        from posevid.utils.extras import require

        require("onnxruntime", f"--estimator {settings.estimator}")
        options = {"det_model": settings.det_model, "pose_model": settings.pose_model}
    elif settings.det_model or settings.pose_model:
        raise InputError("--det-model/--pose-model apply to --estimator dwpose or rtmpose only")
    estimator, options = (settings.estimator, options) if settings.body_only else wholebody_estimator(settings.estimator, options)
    # style "fyp": the joint correction moves MediaPipe's joints to where COCO-trained models put them (MMPose for
    # FYP, ViTPose for Wan)
    pose = options_from_flags(
        smooth=settings.smooth, min_cutoff=settings.min_cutoff, beta=settings.beta, joint_correction=settings.joint_correction,
        estimator=settings.estimator, style="fyp", threshold=settings.threshold,
    )  # fmt: skip
    return _Checked(output_fps(settings.fps), parse_area(settings.area), estimator, options, pose)


def read_image(path: str | Path) -> np.ndarray:
    """The reference image as (H, W, 3) uint8 RGB, upright; one line if unreadable.

    Upright: a photo's EXIF orientation is applied, as Wan's ``cv2.imread`` does and every viewer shows it, so
    ``src_ref.png`` (written without EXIF) is read the same way by Wan, ComfyUI and PIL. Alpha is dropped, as
    ``cv2.imread`` drops it.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except Exception:  # PIL raises several types for a damaged or foreign file
        raise InputError(f"cannot read the reference image {path}", hint="pass a PNG or JPEG image") from None


def _decode(video, indices: np.ndarray, progress: Progress, quiet: bool) -> list[np.ndarray]:
    """The frames at ``indices`` (sorted, unique), in order."""
    from posevid.video import iter_frames

    frames: list[np.ndarray] = []
    bar = progress_bar(total=len(indices), desc="decode", enabled=not quiet)
    try:
        for frame in iter_frames(video, indices=indices):
            frames.append(frame)
            bar.update(1)
            progress("decode", len(frames), len(indices))
    finally:
        bar.close()
    return frames


def _count_frames(video) -> int:
    from posevid.video import iter_frames

    return sum(1 for _ in iter_frames(video))


def _source_frames(settings: WanPreprocessSettings, fps: float | None, progress: Progress) -> tuple[Any, np.ndarray, list[np.ndarray]]:
    """``(video info, Wan's frame index per output frame, the decoded frames of the unique indices)``.

    The frame count is the container's; when the file holds fewer frames than its header says, the frames are
    counted and the indices computed again (Wan's decord counts the frames it can index).
    """
    from posevid.video import probe_video
    from posevid.wan.frames import frame_indices, target_frame_count

    info = probe_video(settings.video)
    total = info.num_frames
    for _ in range(2):
        rate = info.fps if fps is None else fps
        indices = frame_indices(total, info.fps, target_frame_count(total, info.fps, rate), rate)[: settings.max_frames]
        unique = np.unique(indices)
        frames = _decode(info, unique, progress, settings.quiet)
        if len(frames) == len(unique):
            return info, indices, frames
        total = _count_frames(info)
    raise InputError(f"cannot read the frames of {settings.video} its header announces", hint="re-encode the video")


def _keypoints(frames, checked: _Checked, settings: WanPreprocessSettings, *, fps: float, source: str,
               progress: Progress, image: bool = False):  # fmt: skip
    """``(T, 133, 3)`` whole-body pixels of one person in ``frames`` and the extraction's meta.

    The same clean-up as ``posevid pose`` (person choice, gap filling, smoothing, MediaPipe's joint correction);
    ``image``: one still image (static mode, nothing to smooth).
    """
    from posevid.pose.extract import extract_keypoints_from_frames
    from posevid.pose.wholebody import wholebody_keypoints

    options = dict(checked.options, static_image_mode=True) if image and settings.estimator == "mediapipe" else checked.options
    height, width = frames[0].shape[:2]

    def counted():
        for done, frame in enumerate(frames, 1):
            yield frame
            progress("pose", done, len(frames))

    seq = extract_keypoints_from_frames(
        counted(), width, height, estimator=checked.estimator, estimator_options=options, fps=fps,
        smoothing=None if image else checked.pose.smoothing,
        person=settings.person, fill="none" if image else settings.fill, threshold=settings.threshold,
        progress=not (settings.quiet or image), total=len(frames), source=source,
    )  # fmt: skip
    meta = dict(seq.meta, joint_correction=checked.pose.joint_correction)
    return wholebody_keypoints(checked.pose.prepare(seq), joint_correction=False), meta


def _with_model_files(checked: _Checked) -> _Checked:
    """An ONNX estimator's files found (given, cached or downloaded) before the video is decoded: a missing model costs
    no decoding (the whole clip is held in memory, which takes a while for a long video)."""
    if "det_model" not in checked.options:  # mediapipe: its models ship in the wheel
        return checked
    from dataclasses import replace

    from posevid.pose.estimators.rtmpose import model_files

    det, pose = model_files(checked.estimator, checked.options["det_model"], checked.options["pose_model"])
    return replace(checked, options={**checked.options, "det_model": str(det), "pose_model": str(pose)})


def wan_inputs(settings: WanPreprocessSettings, *, progress: Progress = no_progress) -> tuple[WanInputs, WanPreprocessInfo]:
    """Wan2.2-Animate's inputs for ``settings.video`` and ``settings.image``, in memory (nothing is written).

    Bad input (missing or unreadable files, a video shorter than one output frame, nobody in the video, a
    reference without a person when retargeting) is a one-line :class:`~posevid.errors.PosevidError`.
    """
    from posevid.pose.sequence import KeypointSequence
    from posevid.pose.wholebody import part_presence
    from posevid.wan.preprocess import preprocess

    checked = _with_model_files(validate(settings))
    seconds: dict[str, float] = {}
    reference = read_image(settings.image)
    reference_keypoints = None
    if settings.retarget:  # before the video's work: a reference without a person stops here
        t_ref = time.perf_counter()
        try:
            ref_kp, _ = _keypoints([reference], checked, settings, fps=1.0, source=str(settings.image), progress=no_progress, image=True)
        except NoPersonError:
            raise NoPersonError(
                f"no person found in the reference image {settings.image}",
                hint="retargeting needs the reference's body: show the whole person",
            ) from None
        reference_keypoints = ref_kp[:1]
        seconds["reference"] = time.perf_counter() - t_ref
    t0 = time.perf_counter()
    info, indices, unique_frames = _source_frames(settings, checked.fps, progress)
    fps = info.fps if checked.fps is None else checked.fps
    seconds["decode"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    unique, position = np.unique(indices, return_inverse=True)
    kp_unique, pose_meta = _keypoints(
        unique_frames, checked, settings, fps=min(info.fps, fps), source=str(settings.video), progress=progress
    )  # fmt: skip
    frames = np.stack([unique_frames[i] for i in position])  # one copy, then the decoded list goes
    del unique_frames
    keypoints = kp_unique[position]
    seconds["pose"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    inputs = preprocess(
        frames, reference, keypoints, reference_keypoints, mode=settings.mode, retarget=settings.retarget, area=checked.area,
        progress=progress,
    )  # fmt: skip
    seconds["preprocess"] = time.perf_counter() - t2

    report, count = inputs.report, len(frames)
    notes = []
    if pose_meta["empty_frames"]:
        how = "left empty" if settings.fill == "none" else f"filled by {settings.fill}"
        notes.append(f"no person found in {pose_meta['empty_frames']} of {len(unique)} decoded frames ({how})")
    if report.face_boxes_filled:
        notes.append(
            f"no face found in {report.face_boxes_filled} of {count} frames: their face box came from a neighbouring frame or the "
            "head points (Wan's own preprocessing stops there)"
        )
    if report.person_masks_empty:
        notes.append(f"no person mask in {report.person_masks_empty} of {count} frames (the whole frame is background there)")
    whole = KeypointSequence(keypoints[:, None].astype(np.float32), "wholebody133", frames.shape[2], frames.shape[1], fps)
    pose = {k: pose_meta.get(k) for k in ("estimator", "joint_correction", "person", "fill", "smoothing", "threshold",
                                          "detected_frames", "empty_frames", "filled_frames", "detection_rate")}  # fmt: skip
    pose["body_only"] = settings.body_only
    result = WanPreprocessInfo(
        video=str(settings.video), image=str(settings.image), source_fps=info.fps, source_frames=info.num_frames, fps=fps,
        frame_indices=indices, keypoints=keypoints, reference_keypoints=reference_keypoints, pose=pose, parts=part_presence(whole),
        notes=notes, seconds={k: round(v, 3) for k, v in seconds.items()},
    )  # fmt: skip
    return inputs, result


def output_files(settings: WanPreprocessSettings) -> list[str]:
    """The names :func:`wan_preprocess` writes into ``settings.out`` for these settings (the sidecar last)."""
    names = [FILES["pose"], FILES["face"], FILES["reference"]]
    if settings.mode == "replace":
        names += [FILES["background"], FILES["mask"]]
    return names + ([PREVIEW] if settings.preview else []) + [SIDECAR]


def wan_preprocess(settings: WanPreprocessSettings, *, progress: Progress = no_progress) -> WanPreprocessResult:
    """Write Wan's input folder for ``settings`` into ``settings.out`` (see the module docstring)."""
    from PIL import Image

    from posevid.utils.outputs import OutputSet, sidecar_payload
    from posevid.video import VideoWriter
    from posevid.wan.preview import preview_frames

    validate(settings, need_out=True)
    out_dir = Path(settings.out)
    inputs, info = wan_inputs(settings, progress=progress)

    t0 = time.perf_counter()
    videos = [(FILES["pose"], inputs.pose_frames), (FILES["face"], inputs.face_frames)]
    if settings.mode == "replace":
        videos += [(FILES["background"], inputs.background_frames), (FILES["mask"], inputs.mask_frames)]
    if settings.preview:
        videos.append((PREVIEW, preview_frames(inputs)))
    total, done = len(videos) * len(inputs.pose_frames), 0
    sidecar = out_dir / SIDECAR
    bar = progress_bar(total=total, desc="write", enabled=not settings.quiet)
    try:
        with OutputSet(sidecar) as outputs:  # every file appears together and replaces a previous run's whole set
            Image.fromarray(inputs.reference).save(outputs.path(out_dir / FILES["reference"]), format="PNG")
            for name, frames in videos:
                with VideoWriter(outputs.path(out_dir / name), fps=info.fps, preset=settings.preset) as writer:
                    for frame in frames:
                        writer.write(frame)
                        done += 1
                        bar.update(1)
                        progress("write", done, total)
            info.seconds["write"] = round(time.perf_counter() - t0, 3)
            names = output_files(settings)
            record = {
                "options": asdict(settings),
                "report": inputs.report.as_dict(),
                **info.record(),
                "outputs": names,
                "files": [str(out_dir / name) for name in names],
            }
            payload = sidecar_payload(out_dir / "wan_preprocess", record, kind="wan-preprocess")
            payload["output"] = str(out_dir)
            outputs.path(sidecar).write_text(json.dumps(payload, indent=2) + "\n")
            outputs.commit(previous_sidecar=sidecar)  # e.g. a previous replace-mode run's src_bg.mp4 goes
    finally:
        bar.close()
    progress("done", 1, 1)
    return WanPreprocessResult(out_dir, [out_dir / name for name in output_files(settings)], inputs, info)
