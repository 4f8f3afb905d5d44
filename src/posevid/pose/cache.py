"""Where posevid caches derived files: ``$POSEVID_CACHE`` or ``~/.cache/posevid``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Root of posevid's cache (override with the ``POSEVID_CACHE`` environment variable)."""
    env = os.environ.get("POSEVID_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "posevid"


def offline() -> bool:
    """True when the user asked for no network (``POSEVID_OFFLINE`` or ``HF_HUB_OFFLINE`` set)."""
    return any(os.environ.get(v, "0").lower() not in ("0", "", "false", "no") for v in ("POSEVID_OFFLINE", "HF_HUB_OFFLINE"))
