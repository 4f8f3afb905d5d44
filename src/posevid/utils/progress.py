"""Progress bars that behave in logs as well as in terminals."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


def hide_inner_bar(show: bool = True) -> bool:
    """``disable=`` for a bar nested inside another one.

    tqdm redraws a nested bar with cursor-up escapes (``ESC[A``); in a log file or a pipe those are junk
    lines, so an inner bar is drawn only when stderr is a terminal. The outer bar still reports progress.
    """
    return not show or not sys.stderr.isatty()


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' weight-loading bars and load reports while posevid loads a model.

    posevid checks what it loads itself and reports problems as one line; the library's per-shard bars and
    its 50-line key tables only bury that line. ``POSEVID_DEBUG=1`` shows them again.
    """
    if os.environ.get("POSEVID_DEBUG"):
        yield
        return
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
