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
the whole run, each Ray worker process once for all the clips it is given. The options are
:class:`~posevid.densepose.options.DensePoseOptions`, checked by its one ``validate``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from posevid.data.manifest import Manifest
from posevid.densepose.options import DensePoseOptions  # torch-free
from posevid.errors import PosevidError

FRAMES_DIR = "frames"
_PREDICTORS: dict[tuple, Any] = {}  # this process's loaded models, by (weights, device, dtype); a run's short side is not in them


def load_predictor(options: DensePoseOptions):
    """The DensePose model for ``options``, loaded once per process.

    Kept at the model's own input size: :func:`~posevid.densepose.extract.extract_densepose` applies each run's
    ``short_side`` to a view of it and never changes it, so runs with other short sides share one loaded model.
    """
    from posevid.densepose.predictor import DensePosePredictor
    from posevid.densepose.weights import resolve_weights

    path = resolve_weights(options.weights, flag="--densepose-weights")  # prepare's flag, named in the hints
    key = (str(path.resolve()), options.device, options.dtype)
    if key not in _PREDICTORS:
        _PREDICTORS[key] = DensePosePredictor.from_weights(path, device=options.device, dtype=options.dtype)
    return _PREDICTORS[key]


def check_densepose_options(options: DensePoseOptions | Mapping[str, Any], *, load: bool) -> DensePoseOptions:
    """Check the options and the weights before anything is written; returns them with the weights path resolved.

    ``options``: a :class:`~posevid.densepose.options.DensePoseOptions` or a mapping of some of its fields (the rest
    are its defaults). ``load=True`` loads the model into this process's cache (the plain engine uses it right after);
    ``load=False`` (Ray: the workers load it) builds it once on the CPU to check the file and drops it.
    """
    from posevid.densepose.weights import resolve_weights

    options = DensePoseOptions.from_mapping(options).validate(flag_prefix="--densepose-")  # errors name prepare's flags
    options = replace(options, weights=str(resolve_weights(options.weights, flag="--densepose-weights")))
    if load:
        load_predictor(options)
    else:
        from posevid.densepose.model import DensePoseRCNN
        from posevid.densepose.weights import load_weights_file

        DensePoseRCNN.from_state_dict(load_weights_file(options.weights), None, source=options.weights)
    return options


class DensePoseStage:
    """The clip stage (picklable, for Ray): DensePose on every frame of the item's video, files under ``OUT/frames/<id>/``.

    A clip whose extraction fails on its input (unreadable video, nobody in any frame) is skipped with the
    reason; a model that cannot be loaded stops the run (every clip would fail the same way).
    """

    def __init__(self, out: str | os.PathLike, options: DensePoseOptions) -> None:
        self.out = Path(out)
        self.options = options

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        from posevid.densepose.extract import extract_densepose

        if item["_reason"] is not None:
            return item
        folder = self.out / FRAMES_DIR / item["id"]
        sidecar = folder / "densepose.json"
        if not sidecar.is_file():  # else finished by an interrupted earlier run (the folder appears only when complete)
            predictor = load_predictor(self.options)
            try:
                extract_densepose(item["_path"], folder, self.options, frames=True, overwrite=True, progress=False, predictor=predictor)
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


__all__ = ["FRAMES_DIR", "DensePoseStage", "check_densepose_options", "frame_entries", "load_predictor"]
