"""Progress, defined once: the callback type every task and extraction reports through, and the one progress bar.

* :data:`Progress` ``progress(stage, done, total)`` is how long work tells a caller how far it is (the app's job
  queue, a batch runner): tasks, DensePose extraction and the app's back-end all take one (``no_progress`` when
  nobody listens). Whatever it raises (the app's ``JobCancelled``) stops the work there.
* :func:`progress_bar` is the one tqdm bar of the command line (pose, DensePose, prepare, render, eval, training).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: the one progress callback of every task (e.g. ``("denoise", 3, 50)``)."""


def no_progress(stage: str, done: int, total: int) -> None:
    """The :data:`Progress` of a caller that does not listen."""
    return None


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str,
    unit: str = "frame",
    enabled: bool = True,
    leave: bool = False,
    initial: int = 0,
):
    """A tqdm bar (over ``iterable``, or updated by hand with ``update``/``close``); ``enabled=False`` draws nothing.

    Why one helper: every bar of posevid looks the same (``tqdm.auto``, not left behind by default) and a disabled
    bar is still a bar object, so callers need no ``if bar is not None``.
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, initial=initial, disable=not enabled)


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
