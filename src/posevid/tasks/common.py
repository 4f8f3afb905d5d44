"""What every use case shares: device/dtype choice, the progress callback, a model cache, atomic output sets.

One place each (issue 13): the CLI commands, the app and a batch runner all come through here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from posevid.errors import InputError

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("fp32", "fp16", "bf16")
# Old spellings still accepted (the app used to say float32...).
DTYPE_ALIASES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "half": "fp16"}

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: the one progress callback of every task (e.g. ``("denoise", 3, 50)``)."""


def no_progress(stage: str, done: int, total: int) -> None:
    return None


# ------------------------------------------------------------------------------------------- device / dtype
def pick_device(name: str = "auto") -> str:
    """``auto`` -> cuda > mps > cpu; an explicit device that is not there is a one-line InputError."""
    import torch

    base = name.split(":")[0]
    if base not in DEVICES:
        raise InputError(f"unknown device {name!r}", hint=f"use one of {', '.join(DEVICES)}")
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if base == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked but no CUDA GPU is available", hint="use --device cpu or auto")
    if name == "mps" and not has_mps:
        raise InputError("--device mps was asked but Apple MPS is not available", hint="use --device cpu or auto")
    return name


def dtype_name(name: str) -> str:
    """``fp32|fp16|bf16`` (old spellings accepted)."""
    key = DTYPE_ALIASES.get(str(name).lower(), str(name).lower())
    if key not in DTYPES:
        raise InputError(f"unknown dtype {name!r}", hint=f"use one of {', '.join(DTYPES)}")
    return key


def torch_dtype(name: str):
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name(name)]


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


# ------------------------------------------------------------------------------------------- outputs
class OutputSet:
    """The files of one result, written together: staged in a hidden folder, moved into place on :meth:`commit`.

    Re-running to the same output replaces the whole set: files the previous run listed in its sidecar
    (``"files"``) that this run does not write again (an old ``.gif``, a longer ``_frames/`` folder) are removed
    after the new files are in place. On error nothing is moved and the staging folder is deleted.
    """

    def __init__(self, anchor: str | os.PathLike) -> None:
        self.anchor = Path(anchor)
        base = _existing_parent(self.anchor.parent)
        self.stage = Path(tempfile.mkdtemp(prefix=".posevid-stage-", dir=base))
        self.targets: dict[Path, Path] = {}

    def path(self, final: str | os.PathLike) -> Path:
        """A staging path for ``final`` (a file or a folder to create)."""
        final = Path(final)
        slot = self.stage / str(len(self.targets))
        slot.mkdir()
        staged = slot / final.name  # the final name: writers that derive names from it see the real one
        self.targets[final] = staged
        return staged

    @property
    def files(self) -> list[Path]:
        return list(self.targets)

    def commit(self, previous_sidecar: Path | None = None) -> list[Path]:
        stale = _listed_files(previous_sidecar) if previous_sidecar is not None else []
        try:
            for final, staged in self.targets.items():
                final.parent.mkdir(parents=True, exist_ok=True)
                if final.is_dir() and not final.is_symlink():
                    shutil.rmtree(final)
                shutil.move(str(staged), str(final))
            keep = {p.resolve() for p in self.targets}
            roots = {self.anchor.parent.resolve(), *(p.parent.resolve() for p in self.targets)}
            for old in stale:
                real = old.resolve()
                if real in keep or any(k in real.parents for k in keep) or not any(r == real.parent or r in real.parents for r in roots):
                    continue  # rewritten now, or outside this result's folders (never delete what a sidecar merely names)
                if old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    old.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    old.parent.rmdir()  # an emptied _frames folder
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
        return list(self.targets)

    def abort(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def _listed_files(sidecar: Path) -> list[Path]:
    try:
        payload = json.loads(Path(sidecar).read_text())
    except (OSError, ValueError):
        return []
    listed = payload.get("settings", {}).get("files") or []
    return [Path(p) for p in listed if isinstance(p, str)]


def _existing_parent(path: Path) -> Path:
    path = path.resolve()
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path(tempfile.gettempdir())
