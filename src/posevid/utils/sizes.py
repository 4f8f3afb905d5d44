"""The one reader of a ``WxH`` size flag (``--size 512x512``, ``--densepose-size 640x480``).

Why one function with a named result: two readers used to return (H, W) and (W, H) under one name. :class:`Size`
is ``(width, height)``, in the order the text is written, and says so by its field names; a caller that needs the
numpy order writes ``(size.height, size.width)``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from posevid.errors import InputError

MAX_SIDE = 8192
_SIZE = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")


class Size(NamedTuple):
    """A frame size, width first (as ``WxH`` is written)."""

    width: int
    height: int


def parse_size(text: str | None, flag: str = "--size") -> Size | None:
    """``"512x640"`` -> ``Size(width=512, height=640)``; None or "" stays None; anything else is a one-line
    InputError naming ``flag``."""
    if text is None or str(text).strip() == "":
        return None
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise InputError(f"{flag} must look like WIDTHxHEIGHT (e.g. 512x640), got '{text}'")
    size = Size(int(m.group(1)), int(m.group(2)))
    if not (0 < size.width <= MAX_SIDE and 0 < size.height <= MAX_SIDE):
        raise InputError(f"{flag} {text} is out of range (1..{MAX_SIDE} per side)")
    return size


__all__ = ["MAX_SIDE", "Size", "parse_size"]
