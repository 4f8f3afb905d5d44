"""posevid's cache of derived and downloaded files, the offline switch, and the content key of a file.

* :func:`cache_root`: ``$POSEVID_CACHE`` or ``~/.cache/posevid`` (rendered skeletons, DensePose folders, models);
* :func:`offline`: the one check for "no network" (``POSEVID_OFFLINE`` or ``HF_HUB_OFFLINE``), for downloads of URLs
  and of hub repos alike;
* :func:`file_hash`: the SHA-256 of a file's bytes, the content part of every cache key (and of download checks).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

OFFLINE_VARIABLES = ("POSEVID_OFFLINE", "HF_HUB_OFFLINE")
_FALSE = ("0", "", "false", "no")


def cache_root() -> Path:
    """Root of posevid's cache (override with the ``POSEVID_CACHE`` environment variable)."""
    env = os.environ.get("POSEVID_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "posevid"


def offline() -> bool:
    """True when the user asked for no network (``POSEVID_OFFLINE`` or ``HF_HUB_OFFLINE`` set to anything but 0/false/no)."""
    return any(os.environ.get(v, "0").strip().lower() not in _FALSE for v in OFFLINE_VARIABLES)


def file_hash(path: str | os.PathLike) -> str:
    """Hex SHA-256 of the file's bytes, read in 1 MiB chunks (memory stays flat for large videos and weights)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(path: str | os.PathLike, settings: dict) -> str:
    """A short key for a result derived from ``path``'s content with ``settings`` (JSON-able): 20 hex characters."""
    import json

    return hashlib.sha256((file_hash(path) + json.dumps(settings, sort_keys=True)).encode()).hexdigest()[:20]


__all__ = ["OFFLINE_VARIABLES", "cache_key", "cache_root", "file_hash", "offline"]
