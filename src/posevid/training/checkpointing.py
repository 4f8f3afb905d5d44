"""Training checkpoints: atomic folders, keep-last-K, ``latest`` lookup, no pickled objects.

A checkpoint ``checkpoint-<step>/`` holds

* ``trainable.safetensors`` - the trained tensors (unwrapped names, no ``module.``),
* ``optimizer.pt`` - ``optimizer.state_dict()`` (tensors, numbers, lists only: loads with ``weights_only=True``),
* ``ema.safetensors`` + ``ema.json`` when EMA is on, ``lr_scheduler.json``,
* ``rng_rank<r>.safetensors`` + ``rng_rank<r>.json`` - torch/CUDA generator states (tensors) and the
  numpy/python states (JSON), one pair per process,
* ``state.json`` - step counters, world size, recipe; written **last**: it is the completeness marker.

Every process writes into the staged folder of one :class:`~posevid.utils.outputs.OutputSet` whose staging folder is
``.checkpoint-<step>.tmp/`` (:func:`checkpoint_outputs`); the main process commits it (fsynced, renamed into place,
an older folder of the same step replaced), so a run killed at any moment leaves either a complete checkpoint or a
hidden temp folder that the next run deletes. Old checkpoints are renamed to ``.deleting-*`` before removal for the
same reason.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posevid.errors import CheckpointError
from posevid.utils.outputs import OutputSet

STATE_FILE = "state.json"
_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")


def is_complete(path: Path) -> bool:
    return (path / STATE_FILE).is_file() and (path / "trainable.safetensors").is_file()


def list_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``output_dir``, oldest first."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    found = []
    for p in out.iterdir():
        m = _CKPT_RE.match(p.name)
        if m and p.is_dir() and is_complete(p):
            found.append((int(m[1]), p))
    return sorted(found)


def clean_stale(output_dir: str | os.PathLike) -> list[Path]:
    """Remove temp/deleting folders a killed run left behind; returns what was removed."""
    out = Path(output_dir)
    removed = []
    if out.is_dir():
        for p in out.iterdir():
            if p.is_dir() and (p.name.startswith(".checkpoint-") or p.name.startswith(".deleting-")):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


def resolve_resume(spec: str | None, output_dir: str | os.PathLike) -> Path | None:
    """``None``/"" -> None; ``latest`` -> newest complete checkpoint (or None); a path -> that checkpoint."""
    if not spec:
        return None
    if spec == "latest":
        found = list_checkpoints(output_dir)
        return found[-1][1] if found else None
    path = Path(spec)
    if not path.is_absolute() and not path.exists():
        path = Path(output_dir) / spec
    if not path.is_dir():
        raise CheckpointError(f"resume checkpoint not found: {spec}", hint="pass --resume latest or a checkpoint-N folder of this run")
    if not is_complete(path):
        raise CheckpointError(
            f"{path} is not a complete training checkpoint (no {STATE_FILE})", hint="use an earlier checkpoint-N or 'latest'"
        )
    return path


def prune(output_dir: str | os.PathLike, keep: int | None) -> None:
    if not keep or keep < 1:
        return
    found = list_checkpoints(output_dir)
    for _, path in found[:-keep]:
        trash = path.with_name(f".deleting-{path.name}")
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# RNG states as tensors + JSON
# ------------------------------------------------------------------------------------------------
def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py = random.getstate()
    meta = {
        "numpy": {"kind": kind, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]},
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("torch_cuda_"))]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    n = meta["numpy"]
    np.random.set_state((n["kind"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = meta["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


# ------------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------------
def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}, str(path), metadata=metadata)


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from posevid.utils.checkpoint import load_state_dict_file

    return load_state_dict_file(path)


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def temp_dir(output_dir: Path, step: int) -> Path:
    return output_dir / f".checkpoint-{step}.tmp"


def final_dir(output_dir: Path, step: int) -> Path:
    return output_dir / f"checkpoint-{step}"


def checkpoint_outputs(output_dir: Path, step: int) -> tuple[OutputSet, Path]:
    """The output set of ``checkpoint-<step>`` and the staged folder to write into: the same in every process.

    Only the main process commits (or aborts) it; a folder left by a killed run is removed by :func:`clean_stale`.
    """
    final = final_dir(output_dir, step)
    outputs = OutputSet(final, stage=temp_dir(output_dir, step), durable=True)
    folder = outputs.path(final)
    folder.mkdir(exist_ok=True)
    return outputs, folder
