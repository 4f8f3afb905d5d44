"""Reading pickles without running their code: an unpickler that resolves only an allow-list of globals.

A pickle can name any importable callable (``os.system``, ``builtins.eval``, ``subprocess.Popen``) and call it while
it loads. :class:`RestrictedUnpickler` looks every global up in :meth:`~RestrictedUnpickler.allowed_globals` and
raises :class:`UnsafePickleError` for anything else at lookup time, i.e. before the pickle can call it. Each format
subclasses it with its own allow-list: DreamPose's DensePose dumps (:mod:`posevid.data.dreampose_poses`) and the
DensePose model-zoo weights (:mod:`posevid.densepose.weights`).
"""

from __future__ import annotations

import pickle
from typing import Any

from posevid.errors import InputError


class UnsafePickleError(InputError):
    """A pickle referenced something outside its format's allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :meth:`allowed_globals`; subclasses set the list, ``what`` and ``hint``
    (``allowed_globals = staticmethod(a cached function)``)."""

    what = "a file posevid reads"
    hint = "never open pickles from untrusted sources"

    @staticmethod
    def allowed_globals() -> dict[tuple[str, str], Any]:
        """``(module, name) -> object`` the pickle may use; nothing by default."""
        return {}

    def find_class(self, module: str, name: str) -> Any:
        import _compat_pickle

        # protocol-2 pickles (torch.save's default) spell Python 3 modules the Python 2 way: map them back
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        else:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return self.allowed_globals()[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to unpickle: it references {module}.{name}, which is not part of {self.what}", hint=self.hint
            ) from None


def numpy_globals() -> dict[tuple[str, str], Any]:
    """What a pickled numpy array needs (``ndarray``, ``dtype``, the reconstruct helper under numpy 1 and 2 names) and
    ``OrderedDict``: the allow-list every posevid pickle format starts from."""
    import collections

    import numpy as np

    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = np.core.multiarray._reconstruct
    return allowed


def pickle_module(unpickler: type[RestrictedUnpickler]) -> Any:
    """A stand-in for the ``pickle`` module that loads with ``unpickler``: ``torch.load(..., pickle_module=...)`` for
    zip-format files written by ``torch.save``."""

    class _Module:
        Unpickler = unpickler
        __name__ = "posevid_restricted_pickle"

        @staticmethod
        def load(file, **kwargs):
            return unpickler(file, **kwargs).load()

    return _Module


__all__ = ["RestrictedUnpickler", "UnsafePickleError", "numpy_globals", "pickle_module"]
