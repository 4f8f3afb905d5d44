"""Video -> :class:`KeypointSequence`, streaming: frames are decoded, estimated and dropped one at a time.

Memory stays constant in the video length apart from the keypoints themselves (T x K x 3 floats). The
clean-up steps (person choice, gap filling, smoothing) run on the keypoints after the pass, over the whole
stitched track when the video was estimated in segments (:mod:`posevid.pose.segments`).
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
from posevid.pose.cleanup import ZERO_PHASE_SIGMA_S, ZERO_PHASE_SPEED, fill_missing, select_persons, smooth, smooth_zero_phase
from posevid.pose.estimators import PoseEstimator, get_estimator
from posevid.pose.formats import num_keypoints
from posevid.pose.geometry import FitTransform
from posevid.pose.options import DEFAULT_SMOOTH, ONE_EURO_DEFAULTS, POSE_DEFAULTS
from posevid.pose.segments import Segment, assign_segments, detect_segments, plan_segments
from posevid.pose.sequence import KeypointSequence
from posevid.utils.progress import progress_bar


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
    estimator: str | PoseEstimator = POSE_DEFAULTS.estimator,
    estimator_options: dict[str, Any] | None = None,
    fps: float = 30.0,
    frame_indices: Iterable[int] | None = None,
    smoothing: bool | str | dict[str, float] = POSE_DEFAULTS.smooth,
    person: str = POSE_DEFAULTS.person,
    fill: str = POSE_DEFAULTS.fill,
    threshold: float = POSE_DEFAULTS.threshold,
    keypoint_format: str | None = None,
    progress: bool = False,
    total: int | None = None,
    source: str = "",
    require_person: bool = True,
) -> KeypointSequence:
    """Estimate poses on RGB frames (any iterable: list, array, generator) and clean the track up.

    ``fps`` is the rate of the given frames (sets the smoothing time step). ``smoothing``: see
    :func:`smoothing_settings` (default and ``True``: zero-phase, lag-free; ``"one-euro"``, a dict of parameters, ``False``).
    One tracker runs over all the given frames (no segments: the frames are not a video whose length is known).
    Frames of a different size than ``width`` x ``height`` are rejected.
    Raises :class:`NoPersonError` when nobody is found in any frame and ``require_person`` is set.
    """
    owned = isinstance(estimator, str)
    est: PoseEstimator = get_estimator(estimator, **(estimator_options or {})) if owned else estimator
    try:
        frames = progress_bar(frames, total=total, desc=f"pose ({est.name})", enabled=progress)
        detections = detect_segments(frames, est, [(0, 0, None)], width, height)
    finally:
        if owned:
            est.close()
    return _finish(
        detections, est.name, est.keypoint_format, width, height, fps=fps, frame_indices=frame_indices, smoothing=smoothing,
        person=person, fill=fill, threshold=threshold, keypoint_format=keypoint_format, source=source, require_person=require_person,
    )  # fmt: skip


def smoothing_settings(smoothing: bool | str | dict | None) -> dict | None:
    """Normalise the ``smoothing`` option: None (off), One-Euro parameters, or ``{"method": "zero-phase", ...}``.

    ``True`` means the default smoother (:data:`~posevid.pose.options.DEFAULT_SMOOTH`, zero-phase, the lag-free file
    smoother of :func:`~posevid.pose.cleanup.smooth_zero_phase`, as in ``posevid pose``); ``"one-euro"`` or a dict of
    One-Euro parameters: the online filter of earlier versions (the library default before 2026-12); ``"zero-phase"``
    or a dict with ``method``; ``False`` / ``None`` / ``"none"``: off.
    """
    if smoothing is True:
        smoothing = DEFAULT_SMOOTH
    if smoothing is None or smoothing is False or smoothing == "none":
        return None
    if smoothing == "one-euro":
        return dict(ONE_EURO_DEFAULTS)
    if smoothing == "zero-phase":
        return {"method": "zero-phase", "sigma_s": ZERO_PHASE_SIGMA_S, "speed": ZERO_PHASE_SPEED}
    if isinstance(smoothing, dict):
        method = smoothing.get("method", "one-euro")
        if method == "zero-phase":
            speed = smoothing.get("speed", ZERO_PHASE_SPEED)
            return {"method": "zero-phase", "sigma_s": float(smoothing.get("sigma_s", ZERO_PHASE_SIGMA_S)),
                    "speed": None if speed is None else float(speed)}  # fmt: skip
        if method == "one-euro":
            return dict(ONE_EURO_DEFAULTS, **{k: v for k, v in smoothing.items() if k != "method"})
    raise InputError(f"unknown smoothing {smoothing!r}", hint="use zero-phase, one-euro or none")


def _finish(
    detections: list[np.ndarray],
    est_name: str,
    fmt: str,
    width: int,
    height: int,
    *,
    fps: float,
    frame_indices: Iterable[int] | None,
    smoothing: bool | str | dict[str, float],
    person: str,
    fill: str,
    threshold: float,
    keypoint_format: str | None,
    source: str,
    require_person: bool,
) -> KeypointSequence:
    """Clean-up of raw detections (person choice, gap filling, smoothing) into a sequence.

    Shared by the single- and multi-process paths, so stitched segments are cleaned exactly like one pass.
    """
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
    smoothing_params = smoothing_settings(smoothing)
    if smoothing_params is not None and smoothing_params.get("method") == "zero-phase":
        kp = smooth_zero_phase(
            kp, float(fps), scale=float(height), sigma_s=smoothing_params["sigma_s"], speed=smoothing_params["speed"], threshold=threshold
        )
    elif smoothing_params is not None:
        times = np.arange(T) / float(fps)  # the given frames are evenly spaced at ``fps``
        kp = smooth(kp, times, scale=float(height), threshold=threshold, **smoothing_params)
    meta = {
        "estimator": est_name,
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
    estimator: str | PoseEstimator = POSE_DEFAULTS.estimator,
    estimator_options: dict[str, Any] | None = None,
    stride: int = POSE_DEFAULTS.stride,
    target_fps: float | None = None,
    max_frames: int | None = None,
    smoothing: bool | str | dict[str, float] = POSE_DEFAULTS.smooth,
    person: str = POSE_DEFAULTS.person,
    fill: str = POSE_DEFAULTS.fill,
    threshold: float = POSE_DEFAULTS.threshold,
    keypoint_format: str | None = None,
    progress: bool = True,
    require_person: bool = True,
    workers: int | None = None,
) -> KeypointSequence:
    """Pose track of a video file, streaming (see :func:`extract_keypoints_from_frames` for the options).

    ``target_fps`` overrides ``stride`` with the stride closest to that rate. Keypoints are in pixels of
    the upright (rotation-corrected) source frame; the sequence fps is source fps / stride.

    The selected frames are cut into segments by their count alone (:func:`~posevid.pose.segments.plan_segments`),
    each estimated by a fresh tracker after a warm-up; ``workers`` only says how many processes share them
    (``None``: :func:`~posevid.pose.segments.default_workers`; never more than there are segments), so the keypoints
    are the same, bit for bit, for every worker count. Only estimators given by name run in worker processes (an
    estimator object runs the same segments in this process).
    """
    from posevid.video import probe_video

    info = probe_video(video_path)
    step = stride_for_fps(info.fps, target_fps, stride)
    expected = -(-info.num_frames // step)
    if max_frames is not None:
        if max_frames < 1:
            raise InputError(f"max_frames must be >= 1, got {max_frames}")
        expected = min(expected, max_frames)
    plan = plan_segments(expected)
    blocks = assign_segments(plan, workers)
    if not isinstance(estimator, str):
        blocks = [plan]
    bar = None
    if progress:
        name = estimator if isinstance(estimator, str) else estimator.name
        bar = progress_bar(total=expected, desc=f"pose ({name}{f', {len(blocks)} workers' if len(blocks) > 1 else ''})")
    try:
        detections, name, fmt = _detect_blocks(video_path, info, blocks, step, max_frames, estimator, estimator_options, bar)
    finally:
        if bar is not None:
            bar.close()
    seq = _finish(
        detections, name, fmt, info.width, info.height, fps=info.fps / step, frame_indices=None, smoothing=smoothing, person=person,
        fill=fill, threshold=threshold, keypoint_format=keypoint_format, source=str(Path(video_path)), require_person=require_person,
    )  # fmt: skip
    seq.frame_indices = np.arange(len(seq), dtype=np.int64) * step
    # the cuts, not the worker count: the keypoints depend on the first and not on the second
    seq.meta.update(stride=step, source_fps=info.fps, rotation=info.rotation, segments=[start for _, start, _ in plan])
    return seq


def block_detections(
    video_path: str,
    estimator: str | PoseEstimator,
    estimator_options: dict[str, Any] | None,
    step: int,
    segments: list[Segment],
    max_frames: int | None,
    width: int,
    height: int,
    on_kept=None,
    threads: int | None = 1,
) -> tuple[list[np.ndarray], str, str]:
    """Raw detections of a contiguous block of segments, decoded in one forward pass (run in a worker process,
    or in the calling process); ``estimator`` by name (built and closed here) or an object (reset, not closed).

    Returns small arrays only (keypoints, never frames), so memory does not grow with the number of workers.
    ``threads``: decoder threads (1 in parallel workers: the other workers keep the other cores busy, and frame
    threads cost ~50 % more CPU; the frames are the same either way).
    """
    from posevid.video import iter_frames

    first, last = segments[0], segments[-1]
    stop = last[2] if last[2] is not None else max_frames  # selected-frame index to stop before (None = end of video)
    count = None if stop is None else stop - first[0]
    frames = prefetch(iter_frames(video_path, stride=step, start=first[0] * step, max_frames=count, threads=threads))
    owned = isinstance(estimator, str)
    est: PoseEstimator = get_estimator(estimator, **(estimator_options or {})) if owned else estimator
    try:
        detections = detect_segments(frames, est, segments, width, height, on_kept)
    except InputError:
        if first[1] == 0:
            raise
        detections = []  # the header promised more frames than the stream has: this block is empty
    finally:
        frames.close()
        if owned:
            est.close()
    return detections, est.name, est.keypoint_format


def _detect_blocks(
    video_path, info, blocks: list[list[Segment]], step: int, max_frames: int | None, estimator, estimator_options, bar
) -> tuple[list[np.ndarray], str, str]:
    """Raw detections of all blocks, stitched in order: block 0 in this process, the others in worker processes.

    Why processes: one mediapipe instance uses ~1.1 cores and its objects cannot be shared, so each worker
    builds its own estimator. The workers are plain ``python -m posevid.pose._segment_worker`` processes
    (see that module for why not ``multiprocessing``). The first block runs in this process, which saves
    one start-up (~1 s: importing mediapipe and building its graph).
    """
    import contextlib
    import json
    import subprocess
    import sys
    import tempfile

    from posevid.pose._segment_worker import unpack

    path = str(video_path)
    tick = None if bar is None else (lambda: bar.update(1))
    if len(blocks) == 1:  # one process: the decoder may use its own threads
        return block_detections(path, estimator, estimator_options, step, blocks[0], max_frames, info.width, info.height, tick, None)
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding ``posevid``, whatever put it on sys.path
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    children = []
    logs = []  # the children's stderr (mediapipe's start-up chatter), shown only when a child fails
    try:
        for block in blocks[1:]:
            logs.append(tempfile.TemporaryFile())  # noqa: SIM115 - closed in the finally below
            child = subprocess.Popen(
                [sys.executable, "-m", "posevid.pose._segment_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logs[-1],
                env=env,
            )
            job = {"video_path": path, "estimator": estimator, "estimator_options": estimator_options, "step": step,
                   "segments": [list(seg) for seg in block], "max_frames": max_frames, "width": info.width,
                   "height": info.height}  # fmt: skip
            children.append(child)
            with contextlib.suppress(OSError):  # a child that died at once is reported (and replaced) below
                child.stdin.write(json.dumps(job).encode())
                child.stdin.close()
        detections, name, fmt = block_detections(
            path, estimator, estimator_options, step, blocks[0], max_frames, info.width, info.height, tick
        )
        for block, child, log in zip(blocks[1:], children, logs, strict=True):
            payload = child.stdout.read()
            if child.wait() == 0 and payload:
                part = unpack(payload)[0]
            else:  # a broken worker (e.g. posevid not importable by a bare interpreter): do its block here
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-1:]
                print(f"posevid: warning: pose worker failed ({' '.join(tail) or f'exit code {child.returncode}'}); "
                      "estimating its segments in this process", file=sys.stderr)  # fmt: skip
                part = block_detections(path, estimator, estimator_options, step, block, max_frames, info.width, info.height)[0]
            detections.extend(part)
            if bar is not None:
                bar.update(len(part))
    finally:
        for child in children:  # on an error here, do not leave workers running
            if child.poll() is None:
                child.kill()
                child.wait()
        for log in logs:
            log.close()
    return detections, name, fmt


def fit_sequence(seq: KeypointSequence, size: tuple[int, int] | None, fit: str = POSE_DEFAULTS.fit) -> KeypointSequence:
    """The same track in a ``size`` (W, H) frame after resize + center-crop or pad (see :class:`FitTransform`)."""
    if size is None or tuple(size) == (seq.width, seq.height):
        return seq
    transform = FitTransform((seq.width, seq.height), tuple(size), fit)
    meta = dict(seq.meta, fit=fit, original_size=[seq.width, seq.height])
    kp = transform.keypoints(seq.keypoints)
    return KeypointSequence(kp, seq.format, size[0], size[1], seq.fps, seq.source, seq.frame_indices.copy(), meta)
