"""Optional extras: a missing optional package is one line naming the ``pip install`` that adds it.

The core install runs generate, animate, pose (MediaPipe), prepare and convert. Other features need an extra
from ``pyproject.toml``; without it the command stops with ``pip install "posevid[EXTRA]"`` instead of a
``ModuleNotFoundError`` traceback. Only the missing package itself is translated: an import error *inside*
an installed package (a broken install) still surfaces as it is.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from posevid.errors import PosevidError

# import name -> the extra in pyproject.toml that installs it
EXTRA_OF = {
    "gradio": "app",
    "tensorboard": "train",
    "matplotlib": "eval",
    "onnxruntime": "dwpose",
    "ray": "ray",
    "ftfy": "wan",
}


class MissingExtraError(PosevidError):
    """An optional package needed by the requested feature is not installed."""


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature`` (e.g. ``"posevid app"``) or raise a one-line :class:`MissingExtraError`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != module.split(".")[0]:
            raise  # the package is there but broken (one of *its* imports failed): do not hide that
        extra = EXTRA_OF[module.split(".")[0]]
        raise MissingExtraError(f"{feature} needs {module}, which is not installed", hint=f'pip install "posevid[{extra}]"') from None


__all__ = ["EXTRA_OF", "MissingExtraError", "require"]
