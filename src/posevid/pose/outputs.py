"""Write the skeleton (and overlay) videos of a pose track: render on the caller's thread, encode on writer threads.

Why threads: after estimation, the render pass decodes the source again (for the overlay), draws, and encodes
one or two H.264 streams. Encoding was most of that pass (libx264's default ``medium`` preset: ~8 ms CPU per
skeleton frame and ~22 ms per overlay frame at 360x480). Each output now has its own writer thread fed through
a small bounded queue, so encoding overlaps decoding and drawing on a 2-core machine, and the encoder uses the
``ultrafast`` preset by default (same CRF 18 quality target; files are larger, which flat skeleton renders
barely notice). ``threaded=False`` is the sequential path (the same frames, written in the same order).

The overlay is drawn straight onto the (resized) video frame instead of rendering on black and pasting the lit
pixels: for the ``fyp`` and ``openpose`` styles (opaque, not anti-aliased) the pixels are identical and it
costs ~1 ms instead of ~11 ms per frame; the anti-aliased ``mmpose`` style is still pasted, as before.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Sequence

import numpy as np

from posevid.pose.options import POSE_DEFAULTS
from posevid.utils.progress import progress_bar

DEFAULT_PRESET = POSE_DEFAULTS.preset
_OPAQUE_STYLES = ("fyp", "openpose")  # drawn without anti-aliasing: drawing on the frame == pasting a render on black


class ThreadedWriter:
    """Feeds a :class:`~posevid.video.VideoWriter` from a background thread; errors surface on the next call."""

    def __init__(self, writer, depth: int = 16) -> None:
        self.writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="posevid-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            if self._error is None:
                try:
                    self.writer.write(frame)
                except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
                    self._error = exc

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, frame: np.ndarray) -> None:
        self._check()
        self._queue.put(frame)

    def _join(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def close(self):
        self._join()
        if self._error is not None:
            self.writer.abort()
            raise self._error
        return self.writer.close()

    def abort(self) -> None:
        self._join()
        self.writer.abort()

    def __enter__(self) -> ThreadedWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def overlay_frame(frame: np.ndarray, keypoints: np.ndarray, style: str, fmt: str, threshold: float | Sequence[float]) -> np.ndarray:
    """The skeleton of ``keypoints`` over ``frame``, as ``overlay(frame, render_frame(...))`` gives, cheaply."""
    from posevid.pose.render import overlay, render_frame

    size = (frame.shape[1], frame.shape[0])
    if style in _OPAQUE_STYLES:
        return render_frame(keypoints, size, style, fmt=fmt, threshold=threshold, canvas=frame)
    return overlay(frame, render_frame(keypoints, size, style, fmt=fmt, threshold=threshold))


def write_pose_videos(
    skel_seq,
    skeleton_path: str | os.PathLike,
    *,
    style: str = POSE_DEFAULTS.style,
    threshold: float | Sequence[float] = POSE_DEFAULTS.threshold,
    overlay_path: str | os.PathLike | None = None,
    video_seq=None,
    frames: Iterable[np.ndarray] | None = None,
    preset: str | None = DEFAULT_PRESET,
    threaded: bool = True,
    progress: bool = False,
) -> None:
    """Render ``skel_seq`` to ``skeleton_path`` and, with ``overlay_path``, ``video_seq`` over ``frames`` (same length).

    ``frames`` are the video frames the overlay is drawn on, already at ``video_seq``'s size. Files appear only
    when complete (:class:`~posevid.video.VideoWriter` is atomic); on any error neither is left behind.
    """
    import contextlib

    from posevid.pose.render import render_frame
    from posevid.video import VideoWriter

    def open_writer(path):
        writer = VideoWriter(path, fps=skel_seq.fps, preset=preset)
        return ThreadedWriter(writer) if threaded else writer

    skel_size = (skel_seq.width, skel_seq.height)
    rows: Iterable[int] = progress_bar(range(len(skel_seq)), desc="render", enabled=progress)
    with contextlib.ExitStack() as stack:
        skel_writer = stack.enter_context(open_writer(skeleton_path))
        over_writer = stack.enter_context(open_writer(overlay_path)) if overlay_path is not None else None
        source = frames if over_writer is not None else [None] * len(skel_seq)
        for t, frame in zip(rows, source, strict=False):
            skel_writer.write(render_frame(skel_seq.keypoints[t], skel_size, style, fmt=skel_seq.format, threshold=threshold))
            if over_writer is not None:
                over_writer.write(overlay_frame(frame, video_seq.keypoints[t], style, video_seq.format, threshold))
