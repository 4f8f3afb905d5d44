"""Deprecation warnings that point at the code using the old name, so the tests can tell internal use from a user's.

:func:`warn_deprecated` attributes the warning to the first frame outside the module that raises it (and outside
decorator frames such as ``torch.no_grad``): a user's script, a test, or another posevid module. The test
configuration turns a DeprecationWarning attributed to a posevid module into an error (``pyproject.toml``), so no
posevid code can go on using a deprecated spelling unnoticed.
"""

from __future__ import annotations

import sys
import warnings

_WRAPPERS = ("contextlib.py", "torch/utils/_contextlib.py", "functools.py")


def warn_deprecated(message: str) -> None:
    """``DeprecationWarning(message)`` at the first caller outside the calling module (decorators stepped over)."""
    frame = sys._getframe(1)  # the function that calls warn_deprecated
    origin = frame.f_code.co_filename
    level = 2
    while frame is not None and (frame.f_code.co_filename == origin or frame.f_code.co_filename.replace("\\", "/").endswith(_WRAPPERS)):
        frame = frame.f_back
        level += 1
    warnings.warn(message, DeprecationWarning, stacklevel=level)


__all__ = ["warn_deprecated"]
