"""DensePose R-CNN weights: the model-zoo ``.pkl`` (read without arbitrary unpickling), safetensors, download.

The published checkpoint ``model_final_162be9.pkl`` is detectron2's model-zoo format, a pickled
``{"model": {name: numpy.ndarray}, "__author__": str}``. It is read through :class:`WeightsUnpickler`,
which resolves only numpy's array/dtype builders and ``OrderedDict``; any other global (``os.system``...)
is refused by name before it can run. ``posevid convert --densepose-pkl`` rewrites it as safetensors.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from posevid.errors import CheckpointError
from posevid.utils.pickles import RestrictedUnpickler, UnsafePickleError, numpy_globals

MODEL_NAME = "densepose_rcnn_R_50_FPN_s1x"
WEIGHTS_URL = "https://dl.fbaipublicfiles.com/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl"
WEIGHTS_ENV = "POSEVID_DENSEPOSE_WEIGHTS"


class WeightsUnpickler(RestrictedUnpickler):
    """Unpickler for model-zoo ``.pkl`` weights: numpy arrays, dtypes and plain containers only."""

    what = "a detectron2 model-zoo weight file"
    hint = "DensePose weights hold numpy arrays only; never open pickles from untrusted sources"
    allowed_globals = staticmethod(functools.cache(numpy_globals))


def load_pkl_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``name -> float tensor`` from a detectron2 model-zoo ``.pkl`` (``{"model": {...}}`` or a bare dict)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = WeightsUnpickler(fh, encoding="latin1").load()
    except UnsafePickleError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except Exception as exc:
        msg = (str(exc).splitlines() or [type(exc).__name__])[0][:160] or type(exc).__name__
        hint = "the file is truncated or not a model-zoo .pkl; re-download it"
        raise CheckpointError(f"cannot read weights {path}: {msg}", hint=hint) from None
    if isinstance(data, Mapping) and isinstance(data.get("model"), Mapping):
        data = data["model"]
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path} is not a model-zoo weight file (found {type(data).__name__})")
    state = {}
    for k, v in data.items():
        if not isinstance(v, np.ndarray):
            raise CheckpointError(f"{path}: entry {k!r} is a {type(v).__name__}, not an array", hint="expected name -> numpy array")
        state[str(k)] = torch.from_numpy(np.ascontiguousarray(v))
    return state


def weights_not_found(path: Path, flag: str = "--weights", *, from_env: bool = False) -> CheckpointError:
    """The one-line error for a weights file that is not there, naming how the user gave it: ``flag`` is the option of
    the command they ran (``posevid densepose --weights``; ``prepare``, ``animate`` and ``app``: ``--densepose-weights``)."""
    if from_env:
        return CheckpointError(f"DensePose weights not found: {path}", hint=f"${WEIGHTS_ENV} names it; fix that or pass {flag} PATH")
    return CheckpointError(f"DensePose weights not found: {path}", hint=f"pass {flag} model_final_162be9.pkl (from {WEIGHTS_URL})")


def load_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A DensePose state dict from ``.pkl`` (model zoo) or ``.safetensors``; one-line errors for bad files."""
    from posevid.utils.checkpoint import load_state_dict_file

    path = Path(path).expanduser()
    if not path.is_file():
        raise weights_not_found(path)
    if path.stat().st_size == 0:
        raise CheckpointError(f"DensePose weights file is empty: {path}", hint="re-download it")
    if path.suffix == ".safetensors":
        return load_state_dict_file(path)
    if path.suffix in (".pkl", ".pickle"):
        return load_pkl_state_dict(path)
    raise CheckpointError(f"unsupported DensePose weights file {path}", hint="use the model zoo's .pkl or a .safetensors conversion")


def resolve_weights(path: str | os.PathLike | None = None, *, flag: str = "--weights") -> Path:
    """The weights file to use: ``path``, else ``$POSEVID_DENSEPOSE_WEIGHTS``, else the cache (downloaded once when online).

    A given file that is not there is an error here, before any model or data work. ``flag``: the weights option of
    the command the user ran, named in the hints (``--weights`` for ``posevid densepose``; ``--densepose-weights`` for
    ``prepare --densepose``, ``animate --driving-video`` and ``app``).
    """
    given = path or os.environ.get(WEIGHTS_ENV)
    if given:
        found = Path(given).expanduser()
        if not found.is_file():
            raise weights_not_found(found, flag, from_env=not path)
        return found
    from posevid.utils.hub import resolve_model_file

    return resolve_model_file(None, env=WEIGHTS_ENV, url=WEIGHTS_URL, what=f"DensePose ({MODEL_NAME})", flag=flag)


def convert_pkl_to_safetensors(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Rewrite a model-zoo ``.pkl`` as safetensors (atomically), once the weights have built the model."""
    from safetensors.torch import save_file

    from posevid.densepose.model import DensePoseRCNN
    from posevid.utils.outputs import atomic_path

    state = load_weights_file(src)
    DensePoseRCNN.from_state_dict(state, source=str(src))
    dst = Path(dst)
    with atomic_path(dst) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata={"format": "pt", "model": MODEL_NAME})
    return dst


__all__ = [
    "MODEL_NAME",
    "WEIGHTS_URL",
    "WeightsUnpickler",
    "convert_pkl_to_safetensors",
    "load_pkl_state_dict",
    "load_weights_file",
    "resolve_weights",
    "weights_not_found",
]
