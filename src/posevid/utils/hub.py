"""Getting model files, offline-first, with a one-line failure: hub repos and single files from a URL.

* ``resolve_model_path("CompVis/stable-diffusion-v1-4")`` returns a local folder: the path itself if it exists, else
  the hub cache (no network), else a download.
* ``resolve_model_file(None, env=..., url=...)`` returns one local file (ONNX pose models, DensePose weights): the
  given path, else the environment variable's, else ``<cache>/models/``, else a one-time download (a ``.zip`` is
  unpacked to its ``.onnx``), checked against a SHA-256 where one is published.

Both stop when the user asked for no network (:func:`posevid.utils.cache.offline`). When nothing works the user gets
a :class:`CheckpointError` that says where to put the file, never a traceback from the HTTP stack.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from posevid.errors import CheckpointError, short_reason
from posevid.utils.cache import cache_root, file_hash, offline


def looks_like_hub_id(spec: str) -> bool:
    """``owner/name`` with no local meaning (not an existing path, not absolute, no ``./``)."""
    if os.path.exists(spec) or spec.startswith((".", "/", "~")) or "\\" in spec:
        return False
    parts = spec.split("/")
    return len(parts) == 2 and all(parts)


def resolve_model_path(
    spec: str | os.PathLike,
    *,
    what: str,
    allow_patterns: Sequence[str] | None = None,
    revision: str | None = None,
    how_to_get: str = "",
) -> Path:
    """Local folder for ``spec`` (a path or a hub id); raises :class:`CheckpointError` when unavailable."""
    spec_str = str(spec)
    path = Path(spec_str).expanduser()
    if path.exists():
        return path
    if not looks_like_hub_id(spec_str):
        raise CheckpointError(f"{what} not found: {spec_str}", hint=how_to_get or "check the path")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers
        raise CheckpointError(f"cannot fetch {what} '{spec_str}': huggingface_hub is not installed") from None
    kwargs = dict(repo_id=spec_str, revision=revision, allow_patterns=list(allow_patterns) if allow_patterns else None)
    try:
        return Path(snapshot_download(local_files_only=True, **kwargs))
    except Exception:
        pass
    if offline():
        raise CheckpointError(
            f"{what} '{spec_str}' is not in the local cache and offline mode is on (HF_HUB_OFFLINE or POSEVID_OFFLINE)",
            hint=how_to_get or "download it once online, or pass a local folder with --model",
        )
    try:
        return Path(snapshot_download(**kwargs))
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(
            f"cannot download {what} '{spec_str}' from the model hub and no local copy exists ({reason})",
            hint=how_to_get or "download it on a machine with internet access and pass the folder with --model DIR",
        ) from None


def resolve_model_file(
    given: str | os.PathLike | None,
    *,
    env: str,
    url: str,
    what: str,
    flag: str | None = None,
    sha256: str | None = None,
    allow_download: bool = True,
) -> Path:
    """One local model file: ``given``, else ``$env``, else the cache, else a one-time download of ``url``.

    ``flag``: the option that passes the file, named in the offline hint. ``sha256``: the published checksum of the
    downloaded file (of the archive for a ``.zip``), checked before the file enters the cache. ``allow_download=False``:
    use the file only if it is already here (a caller choosing an optional model must not start a download), and say
    so the way offline mode does.
    """
    given = given or os.environ.get(env)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise CheckpointError(f"{what} model not found: {path}", hint=f"pass an existing .onnx file (or set {env})")
        return path
    name = url.rsplit("/", 1)[-1]
    cached = cache_root() / "models" / (name[:-4] + ".onnx" if name.endswith(".zip") else name)
    if cached.is_file():
        return cached
    if offline() or not allow_download:
        passing = f"pass its path with {flag}" if flag else "pass its path"
        hint = f"download {url} and put it at {cached}, or {passing} (or set {env})"
        where = "offline" if allow_download else "without a download"
        raise CheckpointError(f"{what} model is not available {where}", hint=hint)
    download(url, cached, what=f"the {what} model", sha256=sha256)
    return cached


def download(url: str, dest: str | os.PathLike, *, what: str, sha256: str | None = None) -> Path:
    """Fetch ``url`` into ``dest`` (atomically: a broken download leaves nothing); a ``.zip`` URL is unpacked to the
    ``.onnx`` it holds. ``sha256``: the expected checksum of what ``url`` serves; a mismatch is a one-line error."""
    import shutil
    import urllib.request
    import zipfile

    from posevid.utils.outputs import OutputSet

    dest = Path(dest)
    try:
        with OutputSet(dest) as outputs:
            target = outputs.path(dest)
            fetched = outputs.stage / "download.zip" if url.endswith(".zip") else target
            with urllib.request.urlopen(url, timeout=60) as response, open(fetched, "wb") as fh:  # noqa: S310 - fixed https URLs
                shutil.copyfileobj(response, fh)
            if sha256 is not None and file_hash(fetched) != sha256.lower():
                raise CheckpointError(f"{url} does not match its published SHA-256", hint="the download is corrupt; try again")
            if fetched != target:
                with zipfile.ZipFile(fetched) as zf:
                    member = next((m for m in zf.namelist() if m.endswith(".onnx")), None)
                    if member is None:
                        raise CheckpointError(f"{url} holds no .onnx file")
                    target.write_bytes(zf.read(member))
            outputs.commit()
    except CheckpointError:
        raise
    except Exception as exc:
        hint = f"download {url} by hand and put it at {dest}"
        raise CheckpointError(f"cannot download {what} ({short_reason(exc, 120)})", hint=hint) from None
    return dest
