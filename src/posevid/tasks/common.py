"""What the use cases share beyond the generic helpers: the sidecar record of a settings dataclass and the model cache.

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
