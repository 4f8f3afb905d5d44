"""Video -> :class:`KeypointSequence`, streaming: frames are decoded, estimated and dropped one at a time.

Memory stays constant in the video length apart from the keypoints themselves (T x K x 3 floats). The
clean-up steps (person choice, gap filling, One-Euro smoothing) run on the keypoints after the pass.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from posevid.errors import InputError, NoPersonError
from posevid.pose.cleanup import fill_missing, select_persons, smooth
from posevid.pose.estimators import PoseEstimator, get_estimator
from posevid.pose.formats import num_keypoints
from posevid.pose.geometry import FitTransform
from posevid.pose.sequence import KeypointSequence

DEFAULT_SMOOTHING = {"min_cutoff": 2.0, "beta": 50.0, "d_cutoff": 1.0}


def _progress(iterable, total: int | None, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="frame", leave=False)


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(iterable: Iterable, depth: int = 8) -> Iterator:
    """Yield the items of ``iterable``, produced ahead by a background thread.

    Why: decoding (PyAV, which releases the GIL) then overlaps pose estimation: 46 vs 36.5 frames/s in
    interleaved A/B runs of ``benchmarks/pose_speed.py`` on the shared 2-core machine (+26 %). Order is
    kept, the producer's exceptions are re-raised here, and stopping early (an exception in the consumer,
    or ``close()``) stops the producer and closes the source generator.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def worker() -> None:
        source = iter(iterable)
        try:
            for item in source:
                if not put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            put(_Raised(exc))
            return
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
        put(end)

    thread = threading.Thread(target=worker, name="posevid-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=10)


def stride_for_fps(source_fps: float, target_fps: float | None, stride: int = 1) -> int:
    """Frame stride that brings ``source_fps`` closest to ``target_fps`` (never below 1)."""
    if target_fps is None:
        if int(stride) < 1:
            raise InputError(f"--stride must be >= 1, got {stride}")
        return int(stride)
    if target_fps <= 0:
        raise InputError(f"--fps must be > 0, got {target_fps}")
    return max(1, int(round(source_fps / target_fps)))


def extract_keypoints_from_frames(
    frames: Iterable[np.ndarray],
    width: int,
    height: int,
    *,
    estimator: str | PoseEstimator = "mediapipe",
    estimator_options: dict[str, Any] | None = None,
    fps: float = 30.0,
    frame_indices: Iterable[int] | None = None,
    smoothing: bool | dict[str, float] = True,
    person: str = "largest",
    fill: str = "interpolate",
    threshold: float = 0.3,
    keypoint_format: str | None = None,
    progress: bool = False,
    total: int | None = None,
    source: str = "",
    require_person: bool = True,
) -> KeypointSequence:
    """Estimate poses on RGB frames (any iterable: list, array, generator) and clean the track up.

    ``fps`` is the rate of the given frames (sets the smoothing time step). ``smoothing`` may be a dict of
    One-Euro parameters. Frames of a different size than ``width`` x ``height`` are rejected.
    Raises :class:`NoPersonError` when nobody is found in any frame and ``require_person`` is set.
    """
    owned = isinstance(estimator, str)
    est: PoseEstimator = get_estimator(estimator, **(estimator_options or {})) if owned else estimator
    detections: list[np.ndarray] = []
    try:
        est.reset()
        for frame in _progress(frames, total, progress, f"pose ({est.name})"):
            frame = np.asarray(frame)
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise InputError(f"frames must be uint8 RGB (H, W, 3), got {frame.dtype} {frame.shape}")
            if frame.shape[:2] != (height, width):
                raise InputError(f"frame of size {frame.shape[1]}x{frame.shape[0]} in a {width}x{height} sequence")
            detections.append(np.asarray(est(frame), dtype=np.float32))
    finally:
        if owned:
            est.close()
    fmt = est.keypoint_format
    T = len(detections)
    if T == 0:
        raise InputError(f"no frames to estimate poses on{f' in {source}' if source else ''}")
    detected = np.array([len(d) > 0 for d in detections])
    if require_person and not detected.any():
        where = source or "the given frames"
        raise NoPersonError(f"no person found in any of the {T} frames of {where}", hint="use a video where a whole person is visible")
    kp = select_persons(detections, mode=person, width=width, height=height, num_keypoints=num_keypoints(fmt), threshold=threshold)
    kp, filled = fill_missing(kp, fill)
    indices = np.arange(T) if frame_indices is None else np.asarray(list(frame_indices), dtype=np.int64)[:T]
    smoothing_params: dict[str, float] | None = None
    if smoothing:
        smoothing_params = dict(DEFAULT_SMOOTHING, **(smoothing if isinstance(smoothing, dict) else {}))
        times = np.arange(T) / float(fps)  # the given frames are evenly spaced at ``fps``
        kp = smooth(kp, times, scale=float(height), threshold=threshold, **smoothing_params)
    meta = {
        "estimator": est.name,
        "estimator_format": fmt,
        "person": person,
        "fill": fill,
        "smoothing": smoothing_params,
        "threshold": threshold,
        "num_frames": T,
        "detected_frames": int(detected.sum()),
        "empty_frames": int((~detected).sum()),
        "detection_rate": float(detected.mean()),
        "filled_frames": filled,
    }
    seq = KeypointSequence(kp, fmt, width, height, fps, str(source), indices, meta)
    return seq.to_format(keypoint_format) if keypoint_format and keypoint_format != fmt else seq


def extract_keypoints(
    video_path: str | os.PathLike,
    *,
    estimator: str | PoseEstimator = "mediapipe",
    estimator_options: dict[str, Any] | None = None,
    stride: int = 1,
    target_fps: float | None = None,
    max_frames: int | None = None,
    smoothing: bool | dict[str, float] = True,
    person: str = "largest",
    fill: str = "interpolate",
    threshold: float = 0.3,
    keypoint_format: str | None = None,
    progress: bool = True,
    require_person: bool = True,
) -> KeypointSequence:
    """Pose track of a video file, streaming (see :func:`extract_keypoints_from_frames` for the options).

    ``target_fps`` overrides ``stride`` with the stride closest to that rate. Keypoints are in pixels of
    the upright (rotation-corrected) source frame; the sequence fps is source fps / stride.
    """
    from posevid.video import iter_frames, probe_video

    info = probe_video(video_path)
    step = stride_for_fps(info.fps, target_fps, stride)
    expected = -(-info.num_frames // step)
    if max_frames is not None:
        if max_frames < 1:
            raise InputError(f"max_frames must be >= 1, got {max_frames}")
        expected = min(expected, max_frames)
    frames = prefetch(iter_frames(video_path, stride=step, max_frames=max_frames))
    seq = extract_keypoints_from_frames(
        frames, info.width, info.height, estimator=estimator, estimator_options=estimator_options, fps=info.fps / step,
        frame_indices=None, smoothing=smoothing, person=person, fill=fill, threshold=threshold, keypoint_format=keypoint_format,
        progress=progress, total=expected, source=str(Path(video_path)), require_person=require_person,
    )  # fmt: skip
    seq.frame_indices = np.arange(len(seq), dtype=np.int64) * step
    seq.meta.update(stride=step, source_fps=info.fps, rotation=info.rotation)
    return seq


def fit_sequence(seq: KeypointSequence, size: tuple[int, int] | None, fit: str = "crop") -> KeypointSequence:
    """The same track in a ``size`` (W, H) frame after resize + center-crop or pad (see :class:`FitTransform`)."""
    if size is None or tuple(size) == (seq.width, seq.height):
        return seq
    transform = FitTransform((seq.width, seq.height), tuple(size), fit)
    meta = dict(seq.meta, fit=fit, original_size=[seq.width, seq.height])
    kp = transform.keypoints(seq.keypoints)
    return KeypointSequence(kp, seq.format, size[0], size[1], seq.fps, seq.source, seq.frame_indices.copy(), meta)
