"""Resolve a model given as a local folder or a hub id, offline-first, with a one-line failure.

``resolve_model_path("CompVis/stable-diffusion-v1-4")`` returns a local folder: the path itself if it
exists, else the hub cache (no network), else a download. When none of these works the user gets a
:class:`CheckpointError` that says where to put the weights, never a traceback from the HTTP stack.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from posevid.errors import CheckpointError


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
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise CheckpointError(
            f"{what} '{spec_str}' is not in the local cache and HF_HUB_OFFLINE is set",
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
