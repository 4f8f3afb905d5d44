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
from posevid.pose.cleanup import ZERO_PHASE_SIGMA_S, ZERO_PHASE_SPEED, fill_missing, select_persons, smooth, smooth_zero_phase
from posevid.pose.estimators import PoseEstimator, get_estimator
from posevid.pose.formats import num_keypoints
from posevid.pose.geometry import FitTransform
from posevid.pose.sequence import KeypointSequence
from posevid.utils.progress import progress_bar

DEFAULT_SMOOTHING = {"min_cutoff": 2.0, "beta": 50.0, "d_cutoff": 1.0}


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
    smoothing: bool | str | dict[str, float] = True,
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

    ``fps`` is the rate of the given frames (sets the smoothing time step). ``smoothing``: see
    :func:`smoothing_settings` (``True`` = One-Euro, ``"zero-phase"`` = lag-free, a dict of parameters, ``False``).
    Frames of a different size than ``width`` x ``height`` are rejected.
    Raises :class:`NoPersonError` when nobody is found in any frame and ``require_person`` is set.
    """
    owned = isinstance(estimator, str)
    est: PoseEstimator = get_estimator(estimator, **(estimator_options or {})) if owned else estimator
    try:
        est.reset()
        detections = _detect(progress_bar(frames, total=total, desc=f"pose ({est.name})", enabled=progress), est, width, height)
    finally:
        if owned:
            est.close()
    return _finish(
        detections, est.name, est.keypoint_format, width, height, fps=fps, frame_indices=frame_indices, smoothing=smoothing,
        person=person, fill=fill, threshold=threshold, keypoint_format=keypoint_format, source=source, require_person=require_person,
    )  # fmt: skip


def _detect(frames: Iterable[np.ndarray], est: PoseEstimator, width: int, height: int) -> list[np.ndarray]:
    """Raw per-frame detections (each an (N, K, 3) float32 array, N = people found) of one estimator pass."""
    detections: list[np.ndarray] = []
    for frame in frames:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"frames must be uint8 RGB (H, W, 3), got {frame.dtype} {frame.shape}")
        if frame.shape[:2] != (height, width):
            raise InputError(f"frame of size {frame.shape[1]}x{frame.shape[0]} in a {width}x{height} sequence")
        detections.append(np.asarray(est(frame), dtype=np.float32))
    return detections


def smoothing_settings(smoothing: bool | str | dict | None) -> dict | None:
    """Normalise the ``smoothing`` option: None (off), One-Euro parameters, or ``{"method": "zero-phase", "sigma_s": s}``.

    ``True`` / ``"one-euro"`` / a dict of One-Euro parameters: the online One-Euro filter (the default of the
    library, unchanged, so scripts keep their results); ``"zero-phase"`` (or a dict with ``method``) the lag-free
    file smoother of :func:`~posevid.pose.cleanup.smooth_zero_phase`; ``False`` / ``None`` / ``"none"``: off.
    """
    if smoothing is None or smoothing is False or smoothing == "none":
        return None
    if smoothing is True or smoothing == "one-euro":
        return dict(DEFAULT_SMOOTHING)
    if smoothing == "zero-phase":
        return {"method": "zero-phase", "sigma_s": ZERO_PHASE_SIGMA_S, "speed": ZERO_PHASE_SPEED}
    if isinstance(smoothing, dict):
        method = smoothing.get("method", "one-euro")
        if method == "zero-phase":
            speed = smoothing.get("speed", ZERO_PHASE_SPEED)
            return {"method": "zero-phase", "sigma_s": float(smoothing.get("sigma_s", ZERO_PHASE_SIGMA_S)),
                    "speed": None if speed is None else float(speed)}  # fmt: skip
        if method == "one-euro":
            return dict(DEFAULT_SMOOTHING, **{k: v for k, v in smoothing.items() if k != "method"})
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
    estimator: str | PoseEstimator = "mediapipe",
    estimator_options: dict[str, Any] | None = None,
    stride: int = 1,
    target_fps: float | None = None,
    max_frames: int | None = None,
    smoothing: bool | str | dict[str, float] = True,
    person: str = "largest",
    fill: str = "interpolate",
    threshold: float = 0.3,
    keypoint_format: str | None = None,
    progress: bool = True,
    require_person: bool = True,
    workers: int | None = None,
) -> KeypointSequence:
    """Pose track of a video file, streaming (see :func:`extract_keypoints_from_frames` for the options).

    ``target_fps`` overrides ``stride`` with the stride closest to that rate. Keypoints are in pixels of
    the upright (rotation-corrected) source frame; the sequence fps is source fps / stride.

    ``workers`` > 1 splits the video into that many contiguous segments estimated in parallel processes
    (see :func:`plan_segments`); ``None`` picks :func:`default_workers`; 1 is the plain single pass. Only
    estimators given by name can run in workers (an estimator object falls back to one pass).
    """
    from posevid.video import iter_frames, probe_video

    info = probe_video(video_path)
    step = stride_for_fps(info.fps, target_fps, stride)
    expected = -(-info.num_frames // step)
    if max_frames is not None:
        if max_frames < 1:
            raise InputError(f"max_frames must be >= 1, got {max_frames}")
        expected = min(expected, max_frames)
    n_workers = default_workers(expected) if workers is None else int(workers)
    if n_workers < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    plan = (
        plan_segments(expected, n_workers, head_start=head_start_frames(expected, n_workers))
        if isinstance(estimator, str)
        else [(0, 0, None)]
    )
    if len(plan) > 1:
        seq = _extract_parallel(
            video_path, info, plan, step, max_frames, estimator=estimator, estimator_options=estimator_options, smoothing=smoothing,
            person=person, fill=fill, threshold=threshold, keypoint_format=keypoint_format, progress=progress, total=expected,
            require_person=require_person,
        )  # fmt: skip
        seq.frame_indices = np.arange(len(seq), dtype=np.int64) * step
        seq.meta.update(stride=step, source_fps=info.fps, rotation=info.rotation, workers=len(plan))
        return seq
    frames = prefetch(iter_frames(video_path, stride=step, max_frames=max_frames))
    seq = extract_keypoints_from_frames(
        frames, info.width, info.height, estimator=estimator, estimator_options=estimator_options, fps=info.fps / step,
        frame_indices=None, smoothing=smoothing, person=person, fill=fill, threshold=threshold, keypoint_format=keypoint_format,
        progress=progress, total=expected, source=str(Path(video_path)), require_person=require_person,
    )  # fmt: skip
    seq.frame_indices = np.arange(len(seq), dtype=np.int64) * step
    seq.meta.update(stride=step, source_fps=info.fps, rotation=info.rotation, workers=1)
    return seq


WARMUP_FRAMES = 15  # frames a worker estimates before its segment (and discards) so video-mode tracking is locked on
MIN_PARALLEL_FRAMES = 120  # below this many frames the automatic choice stays single-process (start-up ~1 s per worker)
MIN_SEGMENT_FRAMES = 20  # an explicit ``workers`` is lowered until every segment has at least this many frames
CHILD_START_FRAMES = 30  # a child's start-up (interpreter, mediapipe import, graph), in frames estimated meanwhile
SKIP_DECODE_SHARE = 0.05  # decoding a frame a child skips, relative to estimating one


def default_workers(num_frames: int) -> int:
    """Automatic worker count: ``min(2, cpu_count)`` for videos of at least :data:`MIN_PARALLEL_FRAMES` frames, else 1.

    Why 2: one mediapipe estimator uses ~1.1 cores; a second process on the other core gave +62 % on a 2-core
    machine (49.5 -> 80.6 frames/s on an AMD EPYC, 24.7 -> 38.3 on a slower Xeon; docs/benchmarks.md, docs/pose.md).
    More workers than cores only add start-up.
    """
    return min(2, os.cpu_count() or 1) if num_frames >= MIN_PARALLEL_FRAMES else 1


def plan_segments(
    num_frames: int, workers: int, warmup: int = WARMUP_FRAMES, head_start: int = 0
) -> list[tuple[int, int, int | None]]:
    """Split ``num_frames`` (selected) frames into contiguous ``(warm_start, start, end)`` segments.

    Worker ``i`` estimates frames ``warm_start .. end - 1`` and keeps ``start .. end - 1``; the last
    segment has ``end = None`` (to the end of the stream, so a frame count that the container's header
    gets wrong changes nothing). Falls back to fewer workers (down to 1) on short videos.

    ``head_start``: frames the first segment (run in the calling process, which starts at once) gets on top of
    an even share of the rest, so that it ends with the child processes, which start later and estimate warm-up frames
    first (see :func:`head_start_frames`). Lowered so every other segment keeps :data:`MIN_SEGMENT_FRAMES`.
    """
    workers = max(1, min(int(workers), num_frames // MIN_SEGMENT_FRAMES))
    head = max(0, min(int(head_start), num_frames - workers * MIN_SEGMENT_FRAMES)) if workers > 1 else 0
    # even shares of what is left after the head start; head = 0 is the plain even split
    bounds = [0] + [head + round(i * (num_frames - head) / workers) for i in range(1, workers + 1)]
    plan: list[tuple[int, int, int | None]] = []
    for i in range(workers):
        start = bounds[i]
        plan.append((max(0, start - warmup), start, bounds[i + 1] if i < workers - 1 else None))
    return plan


def head_start_frames(num_frames: int, workers: int) -> int:
    """How many more frames the calling process's segment gets than a child's (see :func:`plan_segments`).

    Why these terms: a child first starts Python and mediapipe (~1.3 s CPU: about :data:`CHILD_START_FRAMES`
    frames of estimation when both cores are busy), then estimates :data:`WARMUP_FRAMES` frames it discards,
    and decodes without converting every frame before its segment (~5 % of the cost of an estimated frame).
    With even segments the calling process finished 1.3-2.3 s before the child on the Charades clips and one
    core idled meanwhile.
    """
    if workers < 2:
        return 0
    return WARMUP_FRAMES + CHILD_START_FRAMES + round(SKIP_DECODE_SHARE * num_frames / workers)


def _segment_detections(
    video_path: str,
    estimator: str,
    estimator_options: dict[str, Any] | None,
    step: int,
    segment: tuple[int, int, int | None],
    max_frames: int | None,
    width: int,
    height: int,
    progress=None,
) -> tuple[list[np.ndarray], str, str]:
    """Raw detections of one segment (run in a worker process, or in the parent for the first segment).

    Returns small arrays only (keypoints, never frames), so memory does not grow with the number of workers.
    """
    from posevid.video import iter_frames

    warm_start, start, end = segment
    stop = end if end is not None else max_frames  # selected-frame index to stop before (None = end of video)
    count = None if stop is None else stop - warm_start
    # one decoder thread: the other workers keep the other cores busy, and frame threads cost ~50 % more CPU
    frames: Iterable[np.ndarray] = prefetch(
        iter_frames(video_path, stride=step, start=warm_start * step, max_frames=count, threads=1)
    )
    est = get_estimator(estimator, **(estimator_options or {}))
    try:
        est.reset()
        if progress is not None:
            frames = _counted(frames, progress, skip=start - warm_start)
        try:
            detections = _detect(frames, est, width, height)
        except InputError:
            if start == 0:
                raise
            detections = []  # the header promised more frames than the stream has: this segment is empty
    finally:
        est.close()
    return detections[start - warm_start :], est.name, est.keypoint_format


def _counted(frames: Iterable[np.ndarray], bar, skip: int) -> Iterator[np.ndarray]:
    for i, frame in enumerate(frames):
        yield frame
        if i >= skip:
            bar.update(1)


def _extract_parallel(
    video_path,
    info,
    plan,
    step: int,
    max_frames: int | None,
    *,
    estimator: str,
    estimator_options,
    progress: bool,
    total: int,
    **finish,
) -> KeypointSequence:
    """Estimate the segments of ``plan`` in parallel (segment 0 here, the others in child processes), stitch, clean up.

    Why processes: one mediapipe instance uses ~1.1 cores and its objects cannot be shared, so each worker
    builds its own estimator. The children are plain ``python -m posevid.pose._segment_worker`` processes
    (see that module for why not ``multiprocessing``). The first segment runs in this process, which saves
    one start-up (~1 s: importing mediapipe and building its graph).
    """
    import contextlib
    import json
    import subprocess
    import sys
    import tempfile

    from posevid.pose._segment_worker import unpack

    path = str(video_path)
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding ``posevid``, whatever put it on sys.path
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    children = []
    logs = []  # the children's stderr (mediapipe's start-up chatter), shown only when a child fails
    try:
        for seg in plan[1:]:
            logs.append(tempfile.TemporaryFile())  # noqa: SIM115 - closed in the finally below
            child = subprocess.Popen(
                [sys.executable, "-m", "posevid.pose._segment_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logs[-1],
                env=env,
            )
            job = {"video_path": path, "estimator": estimator, "estimator_options": estimator_options, "step": step, "segment": list(seg),
                   "max_frames": max_frames, "width": info.width, "height": info.height}  # fmt: skip
            children.append(child)
            with contextlib.suppress(OSError):  # a child that died at once is reported (and replaced) below
                child.stdin.write(json.dumps(job).encode())
                child.stdin.close()
        bar = progress_bar(total=total, desc=f"pose ({estimator}, {len(plan)} workers)", enabled=progress)
        try:
            detections, name, fmt = _segment_detections(
                path, estimator, estimator_options, step, plan[0], max_frames, info.width, info.height, bar
            )
            for seg, child, log in zip(plan[1:], children, logs, strict=True):
                payload = child.stdout.read()
                if child.wait() == 0 and payload:
                    part = unpack(payload)[0]
                else:  # a broken worker (e.g. posevid not importable by a bare interpreter): do its segment here
                    log.seek(0)
                    tail = log.read().decode(errors="replace").strip().splitlines()[-1:]
                    print(f"posevid: warning: pose worker failed ({' '.join(tail) or f'exit code {child.returncode}'}); "
                          "estimating its segment in this process", file=sys.stderr)  # fmt: skip
                    part = _segment_detections(path, estimator, estimator_options, step, seg, max_frames, info.width, info.height)[0]
                detections.extend(part)
                bar.update(len(part))
        finally:
            bar.close()
    finally:
        for child in children:  # on an error here, do not leave workers running
            if child.poll() is None:
                child.kill()
                child.wait()
        for log in logs:
            log.close()
    return _finish(
        detections, name, fmt, info.width, info.height, fps=info.fps / step, frame_indices=None, source=str(Path(video_path)), **finish
    )


def fit_sequence(seq: KeypointSequence, size: tuple[int, int] | None, fit: str = "crop") -> KeypointSequence:
    """The same track in a ``size`` (W, H) frame after resize + center-crop or pad (see :class:`FitTransform`)."""
    if size is None or tuple(size) == (seq.width, seq.height):
        return seq
    transform = FitTransform((seq.width, seq.height), tuple(size), fit)
    meta = dict(seq.meta, fit=fit, original_size=[seq.width, seq.height])
    kp = transform.keypoints(seq.keypoints)
    return KeypointSequence(kp, seq.format, size[0], size[1], seq.fps, seq.source, seq.frame_indices.copy(), meta)
