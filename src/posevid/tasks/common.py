"""What the use cases share beyond the generic helpers: the sidecar record of a settings dataclass, the model cache and
the writer of a video's files (:class:`FrameFiles`, used by ``generate`` and by ``animate`` for every backbone).

Device/dtype choice, the progress callback and the atomic output set are not specific to use cases: they live in
:mod:`posevid.utils` (``utils.devices``, ``utils.progress``, ``utils.outputs``), where the lower layers use them too.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any


# ------------------------------------------------------------------------------------------- settings
def record_of(settings: Any, always: tuple[str, ...] = ()) -> dict[str, Any]:
    """A settings dataclass for the sidecar: the ``always`` fields, plus every other field that is not at its default."""
    out: dict[str, Any] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        if f.name in always or value != default:
            out[f.name] = value
    return out


# ------------------------------------------------------------------------------------------- models
@dataclass
class _Entry:
    model: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    load_seconds: float = 0.0


class ModelCache:
    """Load each model once per key; hand out ``(model, lock)`` so callers serialise use of one pipeline object.

    Pass one to the task functions (``models=``) to run many jobs on one load (the app, a batch runner).
    ``capacity``: keep at most this many models, dropping the least recently used (None: keep all; the batch
    runner sorts its jobs by model and keeps one). A dropped model stays alive while a caller still uses it.
    """

    def __init__(self, logger: str = "posevid.app", *, capacity: int | None = None) -> None:
        self._log = logging.getLogger(logger)  # the app's log shows each real load once
        self.capacity = None if capacity is None else max(1, int(capacity))
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()
        self._guard = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}
        self.loads = 0  # how many times a loader actually ran

    def get(self, key: tuple, loader: Callable[[], Any]) -> _Entry:
        with self._guard:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry
            if self.capacity is not None:  # make room before loading: two large models need not coexist
                while len(self._entries) >= self.capacity:
                    self._entries.popitem(last=False)
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one loader per key; others wait for it instead of loading twice
            with self._guard:
                entry = self._entries.get(key)
            if entry is not None:
                return entry
            start = time.perf_counter()
            model = loader()
            entry = _Entry(model=model, load_seconds=time.perf_counter() - start)
            self._log.info("loaded %s in %.1f s", key, entry.load_seconds)
            with self._guard:
                self._entries[key] = entry
                self.loads += 1
            return entry

    @contextlib.contextmanager
    def use(self, key: tuple, loader: Callable[[], Any]) -> Iterator[Any]:
        entry = self.get(key, loader)
        with entry.lock:
            yield entry.model


# ------------------------------------------------------------------------------------------- video files
class FrameFiles:
    """One video's files written frame by frame into an :class:`~posevid.utils.outputs.OutputSet`: the mp4 (streamed,
    so memory does not grow with the length), the GIF (written at the end) and one PNG per frame.

    ``video`` / ``gif``: final paths, or None for none; ``png(number)``: the staged path of a frame's PNG (None: no
    PNGs). Used as a context manager: on an exception the mp4 is aborted and nothing is left behind.
    """

    def __init__(self, outputs, *, video: Path | None = None, gif: Path | None = None, png: Callable[[int], Path] | None = None,
                 fps: float) -> None:  # fmt: skip
        from posevid.video import VideoWriter

        self._video = VideoWriter(outputs.path(video), fps=fps) if video is not None else None
        self._gif = outputs.path(gif) if gif is not None else None
        self._png = png
        self._fps = fps
        self._kept: list[Any] = []

    def write(self, frame, number: int) -> None:
        """One uint8 (H, W, 3) frame; ``number`` names its PNG."""
        from PIL import Image

        if self._png is not None:
            Image.fromarray(frame).save(self._png(number), format="PNG")
        if self._video is not None:
            self._video.write(frame)
        if self._gif is not None:
            self._kept.append(frame)

    def __enter__(self) -> FrameFiles:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        from posevid.video import write_gif

        if self._video is not None:
            if exc_type is not None:
                self._video.abort()
                return
            self._video.close()
        if exc_type is None and self._gif is not None:
            write_gif(self._gif, self._kept, fps=self._fps)
