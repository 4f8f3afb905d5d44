"""One exception type for every user mistake.

The CLI turns a :class:`PosevidError` into a single line on stderr and a non-zero exit code, so a wrong
path or a wrong checkpoint never shows a traceback. Library code raises it with a message that names the
input and says how to fix it.
"""

from __future__ import annotations

import re


class PosevidError(Exception):
    """A user-facing error: the message is one line that names the input and the fix."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        message = " ".join(str(message).split())
        if hint:
            message = f"{message} ({' '.join(hint.split())})"
        super().__init__(message)


class InputError(PosevidError):
    """A file or argument given by the user is missing, unreadable or inconsistent."""


class CheckpointError(PosevidError):
    """Weights cannot be found, are of the wrong model, or do not match the architecture."""


class NoPersonError(PosevidError):
    """Pose extraction found nobody in a video or image."""


def short_reason(exc: BaseException, limit: int = 200) -> str:
    """The first sentence of a library message, cut at a word boundary (never mid-word)."""
    text = (str(exc).strip().splitlines() or [""])[0].strip()
    if len(text) < 12:  # e.g. KeyError: '101' says nothing without its type
        text = f"{type(exc).__name__}: {text}".rstrip(": ")
    sentence = re.split(r"(?<=[a-z0-9)])\. ", text, maxsplit=1)[0].rstrip(".")
    if len(sentence) <= limit:
        return sentence
    return sentence[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"
