"""Writing outputs safely: never leave a half-written file, always leave the settings beside it.

Every output file (mp4, gif, png, keypoints) is written to a temporary name in the destination folder
and renamed into place only when complete, so a crash or a bad input leaves nothing behind. Each result
gets a JSON sidecar (``<name>.json``) with the settings that made it: seed, model, steps, versions.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else "".join(path.suffixes[-1:])
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs are ordinary files
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
