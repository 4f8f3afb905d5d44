"""``posevid prepare --kind ubc --densepose``: DreamPose fine-tuning data straight from videos.

DreamPose trains on frames with their DensePose beside them (``<video>/frame_N.png`` +
``<video>/frame_N_densepose.npy``, the UBC-Fashion ``train-frames`` layout). Here every video of ``SRC`` is
one work item of the clip stages (:mod:`posevid.data.prepare`): ``decode`` probes it, then the model stage
of this module runs DensePose on all its decoded frames (:func:`posevid.densepose.extract.extract_densepose`
with ``frames=True``) and writes::

    OUT/frames/<video id>/frame_N.png               the decoded frame
    OUT/frames/<video id>/frame_N_densepose.npy     its DreamPose pose (2, H, W)
    OUT/frames/<video id>/densepose.json            the extraction sidecar (per-frame box, score, frames without a person)

The folder is written under a temporary name and renamed when complete, so a folder that exists is whole
and an interrupted run reuses it. The clip's manifest entry lists the frames with a person
(``densepose_frames``) and those without (``densepose_empty``: a zero canvas on disk, left out of training);
:class:`posevid.data.datasets.DreamPoseFrameDataset` expands it into one training frame each.

The model is loaded once per process and kept (:func:`load_predictor`): the plain engine loads it once for
the whole run, each Ray worker process once for all the clips it is given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from posevid.data.manifest import Manifest
from posevid.errors import InputError, PosevidError

FRAMES_DIR = "frames"
MODEL_FIELDS = ("weights", "device", "dtype", "batch_size", "person", "short_side")  # the DensePoseSettings fields a caller sets
_PREDICTORS: dict[tuple, Any] = {}  # this process's loaded models, by (weights, device, dtype)


def _weights_path(options: Mapping[str, Any]) -> Path:
    from posevid.densepose.weights import resolve_weights

    return resolve_weights(options.get("weights"), flag="--densepose-weights")  # prepare's flag, named in the hints


def load_predictor(options: Mapping[str, Any]):
    """The DensePose model for ``options`` (``DensePoseSettings`` model fields), loaded once per process."""
    from posevid.densepose.predictor import DensePosePredictor

    path = _weights_path(options)
    key = (str(path.resolve()), options.get("device", "auto"), options.get("dtype", "fp32"))
    if key not in _PREDICTORS:
        _PREDICTORS[key] = DensePosePredictor.from_weights(path, device=key[1], dtype=key[2])
    return _PREDICTORS[key]


def check_densepose_options(options: Mapping[str, Any], *, load: bool) -> dict[str, Any]:
    """Check the options and the weights before anything is written; returns them with the weights path resolved.

    ``load=True`` loads the model into this process's cache (the plain engine uses it right after);
    ``load=False`` (Ray: the workers load it) builds it once on the CPU to check the file and drops it.
    """
    from posevid.densepose.extract import PERSON_RULES, DensePoseSettings
    from posevid.utils.devices import DTYPES

    unknown = sorted(set(options) - set(MODEL_FIELDS))
    if unknown:
        raise InputError(f"unknown DensePose option(s) {', '.join(unknown)}", hint=f"use {', '.join(MODEL_FIELDS)}")
    defaults = DensePoseSettings(input=Path(), out=Path())
    options = {name: options.get(name, getattr(defaults, name)) for name in MODEL_FIELDS}  # complete, for meta.json
    if options["person"] not in PERSON_RULES:
        raise InputError(f"unknown DensePose person rule {options['person']!r}", hint=f"use one of {', '.join(PERSON_RULES)}")
    if options["dtype"] not in DTYPES:
        raise InputError(f"unknown DensePose dtype {options['dtype']!r}", hint=f"use one of {', '.join(DTYPES)}")
    options["weights"] = str(_weights_path(options))
    if load:
        load_predictor(options)
    else:
        from posevid.densepose.model import DensePoseRCNN
        from posevid.densepose.weights import load_weights_file

        DensePoseRCNN.from_state_dict(load_weights_file(options["weights"]), None, source=options["weights"])
    return options


class DensePoseStage:
    """The clip stage (picklable, for Ray): DensePose on every frame of the item's video, files under ``OUT/frames/<id>/``.

    A clip whose extraction fails on its input (unreadable video, nobody in any frame) is skipped with the
    reason; a model that cannot be loaded stops the run (every clip would fail the same way).
    """

    def __init__(self, out: str | os.PathLike, options: Mapping[str, Any]) -> None:
        self.out = Path(out)
        self.options = dict(options)

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        from posevid.densepose.extract import DensePoseSettings, extract_densepose

        if item["_reason"] is not None:
            return item
        folder = self.out / FRAMES_DIR / item["id"]
        sidecar = folder / "densepose.json"
        if not sidecar.is_file():  # else finished by an interrupted earlier run (the folder appears only when complete)
            predictor = load_predictor(self.options)
            settings = DensePoseSettings(input=Path(item["_path"]), out=folder, frames=True, overwrite=True, **self.options)
            try:
                extract_densepose(settings, progress=False, predictor=predictor)
            except PosevidError as exc:
                item["_reason"] = f"DensePose extraction failed: {exc}"
                return item
        side = json.loads(sidecar.read_text())
        empty = list(side["frames_without_person"])
        manifest = Manifest(self.out)
        item.update(
            {
                "frames_dir": manifest.rel(folder),
                "densepose_frames": [f["frame"] for f in side["per_frame"] if f["frame"] not in empty],
                "densepose_empty": empty,
                "densepose_sidecar": manifest.rel(sidecar),
            }
        )
        return item


def frame_entries(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-frame training entries (as ``--kind ubc`` on a frame folder writes them) of one video entry."""
    folder = entry["frames_dir"]
    return [
        {
            "id": f"{entry['id']}/frame_{n}",
            "status": "ok",
            "group": entry["id"],
            "frame": n,
            "image": f"{folder}/frame_{n}.png",
            "densepose": f"{folder}/frame_{n}_densepose.npy",
            "width": entry.get("width"),
            "height": entry.get("height"),
        }
        for n in entry["densepose_frames"]
    ]


__all__ = ["FRAMES_DIR", "MODEL_FIELDS", "DensePoseStage", "check_densepose_options", "frame_entries", "load_predictor"]
