"""Where a video's pose track is cut into segments, and how the segments are shared between worker processes.

Why segments at all: one mediapipe estimator uses about one core, so a 2-core machine only doubles its speed with
two estimators, each on part of the video. Why the cut depends on the video alone: mediapipe's video mode tracks
from frame to frame, so every place where a tracker starts afresh changes the keypoints that follow it. If the
cuts followed the number of workers (and so the number of cores), the same video would give other keypoints on a
laptop, an 8-core box and a Ray cluster. So:

* :func:`plan_segments` cuts the selected frames by their count alone (never by the core or worker count);
* every segment is estimated by a fresh tracker that first runs over the :data:`WARMUP_FRAMES` frames before the
  segment (taken from the video, discarded), whichever process runs it: the calling process running all
  segments one after another resets its tracker at each cut exactly as a worker process starting there would;
* :func:`assign_segments` only distributes the same segments over the workers (contiguous blocks).

mediapipe itself is deterministic: the same frames through a fresh (or reset) tracker give the same bits, in
one process or another, so 1, 2 or N workers and every engine (``posevid pose``, ``prepare``, Ray) give the
same keypoints, bit for bit. A segment boundary still differs from an unbroken pass (docs/pose.md, "Segments and
workers"); the zero-phase smoothing then runs once over the whole stitched track.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable

import numpy as np

from posevid.errors import InputError

Segment = tuple[int, int, "int | None"]  # (warm_start, start, end): estimate warm_start..end-1, keep start..end-1

WARMUP_FRAMES = 15  # frames a fresh tracker estimates before its segment (and discards) so video-mode tracking is locked on
MIN_SPLIT_FRAMES = 120  # shorter videos are one segment (a second process costs ~1 s to start)
MAX_SEGMENT_FRAMES = 600  # longer videos get 4, 8, ... segments of at most this many frames (warm-up <= 5 % of a segment)
CHILD_START_FRAMES = 30  # a worker process's start-up (interpreter, mediapipe import, graph), in frames estimated meanwhile
SKIP_DECODE_SHARE = 0.05  # decoding a frame a worker skips, relative to estimating one


def segment_count(num_frames: int) -> int:
    """How many segments a video of ``num_frames`` selected frames is cut into: 1 below :data:`MIN_SPLIT_FRAMES`,
    else the smallest power of two (at least 2) that keeps segments within :data:`MAX_SEGMENT_FRAMES`.

    Why powers of two: the segments are equal (the first one aside), so 1, 2, 4 ... workers share them evenly.
    """
    if num_frames < MIN_SPLIT_FRAMES:
        return 1
    count = 2
    while num_frames > count * MAX_SEGMENT_FRAMES:
        count *= 2
    return count


def head_start_frames(num_frames: int, segments: int) -> int:
    """How many frames longer the first segment is than the others.

    Why: the first segment runs in the calling process, which starts at once; a worker process first starts
    Python and mediapipe (~1.3 s CPU: about :data:`CHILD_START_FRAMES` frames of estimation when both cores are
    busy), then estimates :data:`WARMUP_FRAMES` frames it discards, and decodes without converting every frame
    before its segment (~5 % of the cost of an estimated frame). With even segments the calling process finished
    1.3-2.3 s before the worker on the Charades clips and one core idled meanwhile. A fixed function of the video
    (its frame count), so it moves the cut the same way for every worker count.
    """
    if segments < 2:
        return 0
    return WARMUP_FRAMES + CHILD_START_FRAMES + round(SKIP_DECODE_SHARE * num_frames / segments)


def plan_segments(num_frames: int, warmup: int = WARMUP_FRAMES) -> list[Segment]:
    """Cut ``num_frames`` selected frames into :func:`segment_count` contiguous ``(warm_start, start, end)`` segments.

    Segment ``i`` is estimated over frames ``warm_start .. end - 1`` by a fresh tracker and keeps ``start .. end - 1``.
    The first is longer by :func:`head_start_frames`, the others share the rest evenly. The last has ``end = None``
    (to the end of the stream, so a frame count that the container's header gets wrong changes nothing).
    """
    count = segment_count(num_frames)
    head = head_start_frames(num_frames, count)
    bounds = [0] + [head + round(i * (num_frames - head) / count) for i in range(1, count)]
    ends: list[int | None] = [*bounds[1:], None]
    # a warm-up never reaches into the segment before the previous one, so a block's frames always hold it
    return [(max(bounds[i - 1], start - warmup) if i else 0, start, end) for i, (start, end) in enumerate(zip(bounds, ends, strict=True))]


def default_workers() -> int:
    """Automatic worker count: ``min(2, cpu_count)``.

    Why 2: one mediapipe estimator uses ~1.1 cores; a second process on the other core gave +62 % on a 2-core
    machine (49.5 -> 80.6 frames/s on an AMD EPYC, 24.7 -> 38.3 on a slower Xeon; docs/benchmarks.md, docs/pose.md).
    More workers than cores only add start-up. The count changes the speed only, never the keypoints.
    """
    return min(2, os.cpu_count() or 1)


def worker_count(workers: int | None, segments: int) -> int:
    """Processes that share ``segments`` segments when ``workers`` are asked for (``None``: :func:`default_workers`)."""
    n = default_workers() if workers is None else int(workers)
    if n < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    return min(n, segments)


def assign_segments(plan: list[Segment], workers: int | None) -> list[list[Segment]]:
    """Share ``plan`` between ``workers`` (``None``: :func:`default_workers`) as contiguous blocks, one per process.

    There are never more blocks than segments; the first block (the calling process's) is never the larger one,
    since its first segment already carries the head start. A contiguous block lets a worker decode its frames in
    one forward pass, each segment's warm-up frames being the last frames of the segment before.
    """
    n = worker_count(workers, len(plan))
    sizes = [len(plan) // n + (i >= n - len(plan) % n) for i in range(n)] if len(plan) % n else [len(plan) // n] * n
    blocks, pos = [], 0
    for size in sizes:
        blocks.append(plan[pos : pos + size])
        pos += size
    return blocks


def detect_segments(
    frames: Iterable[np.ndarray],
    estimator,
    segments: list[Segment],
    width: int,
    height: int,
    on_kept: Callable[[], None] | None = None,
) -> list[np.ndarray]:
    """Raw detections (one ``(N, K, 3)`` float32 array per kept frame) of a contiguous block of segments.

    ``frames`` are the selected frames from ``segments[0][0]`` on. At every segment the tracker is reset and first
    run over the segment's warm-up frames (kept from the previous segment's last frames, or decoded at the start of
    the block), so each segment gets exactly what a fresh worker process starting there would compute.
    ``on_kept`` is called once per kept frame (progress).
    """
    detections: list[np.ndarray] = []
    recent: deque[np.ndarray] = deque(maxlen=max(1, *(s - w for w, s, _ in segments)))  # the next warm-up's frames
    k, index = 0, segments[0][0]  # current segment, selected-frame index of the next frame
    estimator.reset()
    for frame in frames:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"frames must be uint8 RGB (H, W, 3), got {frame.dtype} {frame.shape}")
        if frame.shape[:2] != (height, width):
            raise InputError(f"frame of size {frame.shape[1]}x{frame.shape[0]} in a {width}x{height} sequence")
        if k + 1 < len(segments) and index == segments[k + 1][1]:  # the next segment starts: a fresh tracker
            k += 1
            warm_start, start, _ = segments[k]
            estimator.reset()
            for old in list(recent)[len(recent) - (start - warm_start) :]:  # frames warm_start .. start - 1
                estimator(old)
        end = segments[k][2]
        if end is not None and index >= end:
            break  # the end of the block (the next block is another worker's)
        result = np.asarray(estimator(frame), dtype=np.float32)
        if index >= segments[k][1]:
            detections.append(result)
            if on_kept is not None:
                on_kept()
        recent.append(frame)
        index += 1
    return detections
