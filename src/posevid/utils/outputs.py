"""Writing outputs safely: never a half-written file or folder, always the settings beside the result.

:class:`OutputSet` is the one mechanism: the files (or folders) of one result are written into a hidden staging
folder and moved into place together on :meth:`~OutputSet.commit`, replacing a previous run's whole set; on an error
nothing is moved and the staging folder is deleted. :func:`atomic_path` is its one-file case (keypoints, a GIF, a
weights file, a report). The tasks (generate, animate, pose), DensePose extraction, ``posevid prepare``, training
checkpoints and the video writer all write through it. Each result gets a JSON sidecar (``<name>.json``) with the
settings that made it: seed, model, steps, versions, and the list of files of the set (``"files"``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


class OutputSet:
    """The files of one result, written together: staged in a hidden folder, moved into place on :meth:`commit`.

    Re-running to the same output replaces the whole set: a folder target that exists is renamed aside before the new
    one takes its name (then deleted), and files the previous run listed in its sidecar (``"files"``) that this run does
    not write again (an old ``.gif``, a longer ``_frames/`` folder) are removed after the new files are in place. On
    error nothing is moved and the staging folder is deleted.

    ``stage``: a fixed staging folder instead of a fresh hidden one, for writers that must agree on it beforehand
    (the processes of one training run write one checkpoint). ``durable``: fsync every staged file and the folders
    before and after the move, so a power loss cannot leave a renamed but empty file (checkpoints).
    """

    def __init__(self, anchor: str | os.PathLike, *, stage: str | os.PathLike | None = None, durable: bool = False) -> None:
        self.anchor = Path(anchor)
        if stage is None:
            base = _existing_parent(self.anchor.parent)
            self.stage = Path(tempfile.mkdtemp(prefix=".posevid-stage-", dir=base))
        else:
            self.stage = Path(stage)
            self.stage.mkdir(parents=True, exist_ok=True)
        self.durable = durable
        self.targets: dict[Path, Path] = {}

    def path(self, final: str | os.PathLike) -> Path:
        """A staging path for ``final`` (a file to write or a folder to create), with ``final``'s own name."""
        final = Path(final)
        slot = self.stage / str(len(self.targets))
        slot.mkdir(exist_ok=True)  # exist_ok: several processes may stage into one fixed folder
        staged = slot / final.name  # the final name: writers that derive the format or names from it see the real one
        self.targets[final] = staged
        return staged

    @property
    def files(self) -> list[Path]:
        return list(self.targets)

    def commit(self, previous_sidecar: str | os.PathLike | None = None) -> list[Path]:
        """Move every staged target into place (replacing what is there) and remove the previous set's leftovers."""
        stale = _listed_files(Path(previous_sidecar)) if previous_sidecar is not None else []
        try:
            if self.durable:
                for staged in self.targets.values():
                    _fsync_tree(staged)
            for final, staged in self.targets.items():
                final.parent.mkdir(parents=True, exist_ok=True)
                _move_into_place(staged, final)
            if self.durable:
                for folder in {final.parent for final in self.targets}:
                    _fsync_dir(folder)
            _remove_stale(stale, self.targets, self.anchor)
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """The one-file case of :class:`OutputSet`: yield a staging path named like ``path``; on success it replaces
    ``path``, on error it is deleted."""
    with OutputSet(path) as outputs:
        staged = outputs.path(path)
        yield staged
        outputs.commit()


def _move_into_place(staged: Path, final: Path) -> None:
    """Rename ``staged`` to ``final``; an existing folder is renamed aside first (then deleted), never merged into."""
    aside = None
    if final.is_dir() and not final.is_symlink():
        aside = final.with_name(f".{final.name}.replaced-{uuid.uuid4().hex[:8]}")
        os.replace(final, aside)
    shutil.move(str(staged), str(final))
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _remove_stale(stale: list[Path], targets: Mapping[Path, Path], anchor: Path) -> None:
    keep = {p.resolve() for p in targets}
    roots = {anchor.parent.resolve(), *(p.parent.resolve() for p in targets)}
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


def _fsync_tree(path: Path) -> None:
    if path.is_dir():
        for child in path.rglob("*"):
            if child.is_file():
                _fsync_file(child)
        _fsync_dir(path)
    elif path.is_file():
        _fsync_file(path)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sidecar_path(output: str | os.PathLike) -> Path:
    """``out/video.mp4`` -> ``out/video.json``."""
    output = Path(output)
    return output.with_suffix(".json")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return str(value)


def environment_info() -> dict[str, str]:
    """Versions that decide the numbers: recorded in every sidecar."""
    import sys
    from importlib import metadata

    info = {"python": platform.python_version()}
    for name in ("torch", "diffusers", "transformers", "mediapipe"):
        # an imported module knows its version; otherwise read the installed metadata instead of importing
        # it (importing torch + diffusers + transformers costs seconds, e.g. for a pose-only command)
        module = sys.modules.get(name)
        if module is not None:
            info[name] = getattr(module, "__version__", "?")
            continue
        with contextlib.suppress(Exception):
            info[name] = metadata.version(name)
    from posevid import __version__

    info["posevid"] = __version__
    return info


def sidecar_payload(output: str | os.PathLike, settings: Mapping[str, Any], *, kind: str) -> dict[str, Any]:
    """The sidecar's content: kind, output name, creation time, settings and versions."""
    return {
        "kind": kind,
        "output": Path(output).name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": _jsonable(dict(settings)),
        "environment": environment_info(),
    }


def write_sidecar(output: str | os.PathLike, settings: Mapping[str, Any], *, kind: str) -> Path:
    """Write ``<output stem>.json`` with the settings, output files and versions (atomically)."""
    path = sidecar_path(output)
    payload = sidecar_payload(output, settings, kind=kind)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
    return path
