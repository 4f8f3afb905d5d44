"""``KeypointSequence``: the pose track of one video, and its file format (JSON or NPZ, versioned).

File schema (``schema_version`` 1), identical in both containers:

* ``keypoints``: float32 ``(T, P, K, 3)``, (x, y) in pixels of a ``width`` x ``height`` frame, score in [0, 1]
  (0 = missing). ``P`` is the number of person slots (1 unless extracted with ``person="all"``).
* ``format``: ``coco17`` | ``openpose18`` | ``blazepose33`` (joint order in :mod:`posevid.pose.formats`).
* ``width``, ``height``, ``fps`` (frame rate of the *sequence*, i.e. source fps / stride), ``source`` (path
  of the video it came from, or ""), ``frame_indices`` (index of each row in the source video), ``meta``
  (free-form dict: estimator, smoothing, filled frames ...).

JSON stores ``keypoints`` as nested lists (rounded to 0.01 px / 1e-4 score), readable by anything;
NPZ stores the exact arrays plus a ``header`` JSON string (no pickles: loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posevid.errors import InputError
from posevid.pose.formats import FORMATS, convert, num_keypoints
from posevid.utils.media import KEYPOINT_SUFFIXES
from posevid.utils.outputs import atomic_path

SCHEMA_VERSION = 1
KIND = "posevid.keypoints"


@dataclass
class KeypointSequence:
    """Pose track of a video: ``keypoints[t, person, joint] = (x, y, score)`` in pixels."""

    keypoints: np.ndarray
    format: str
    width: int
    height: int
    fps: float
    source: str = ""
    frame_indices: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints, dtype=np.float32)
        if kp.ndim == 3:  # (T, K, 3): one person
            kp = kp[:, None]
        if self.format not in FORMATS:
            raise InputError(f"unknown keypoint format '{self.format}'", hint=f"use one of {', '.join(FORMATS)}")
        if kp.ndim != 4 or kp.shape[-1] != 3 or kp.shape[2] != num_keypoints(self.format):
            raise InputError(f"keypoints must be (T, P, {num_keypoints(self.format)}, 3) for {self.format}, got {kp.shape}")
        self.keypoints = kp
        self.width, self.height, self.fps = int(self.width), int(self.height), float(self.fps)
        if self.frame_indices is None:
            self.frame_indices = np.arange(len(kp), dtype=np.int64)
        self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64)
        if len(self.frame_indices) != len(kp):
            raise InputError(f"frame_indices has {len(self.frame_indices)} entries for {len(kp)} frames")

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def num_persons(self) -> int:
        return int(self.keypoints.shape[1])

    def present(self, threshold: float = 0.0) -> np.ndarray:
        """``(T,)`` bool: frames where at least one joint of any person scores above ``threshold``."""
        return (self.keypoints[..., 2] > threshold).any(axis=(1, 2))

    def to_format(self, name: str) -> KeypointSequence:
        """Same track in another joint layout (see :func:`posevid.pose.formats.convert`)."""
        kp = convert(self.keypoints, self.format, name)
        return KeypointSequence(kp, name, self.width, self.height, self.fps, self.source, self.frame_indices.copy(), dict(self.meta))

    def header(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "schema_version": SCHEMA_VERSION,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "source": str(self.source),
            "num_frames": len(self),
            "num_persons": self.num_persons,
            "meta": self.meta,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``.json`` or ``.npz`` (chosen by suffix) atomically."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in KEYPOINT_SUFFIXES:
            raise InputError(f"keypoints file must end in {' or '.join(KEYPOINT_SUFFIXES)}: {path}")
        with atomic_path(path) as tmp:
            if suffix == ".json":
                payload = self.header()
                payload["frame_indices"] = self.frame_indices.tolist()
                kp = self.keypoints.astype(np.float64)
                kp[..., :2] = np.round(kp[..., :2], 2)
                kp[..., 2] = np.round(kp[..., 2], 4)
                payload["keypoints"] = kp.tolist()
                tmp.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
            else:
                with open(tmp, "wb") as fh:
                    np.savez_compressed(
                        fh, keypoints=self.keypoints, frame_indices=self.frame_indices, header=np.array(json.dumps(self.header()))
                    )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> KeypointSequence:
        """Read a file written by :meth:`save`; one-line :class:`InputError` for anything else."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"keypoints file not found: {path}")
        try:
            if path.suffix.lower() == ".npz":
                with np.load(path, allow_pickle=False) as data:
                    header = json.loads(str(data["header"]))
                    keypoints, frame_indices = data["keypoints"], data["frame_indices"]
            elif path.suffix.lower() == ".json":
                header = json.loads(path.read_text())
                keypoints = np.asarray(header.get("keypoints"), dtype=np.float32)
                frame_indices = header.get("frame_indices")
            else:
                raise InputError(f"keypoints file must end in .json or .npz: {path}")
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"cannot read keypoints file {path}: {str(exc).splitlines()[0][:120]}", hint="it is corrupt") from None
        if not isinstance(header, dict) or header.get("kind") != KIND:
            raise InputError(f"{path} is not a posevid keypoints file", hint="create one with 'posevid pose VIDEO --out DIR'")
        if int(header.get("schema_version", 0)) > SCHEMA_VERSION:
            version = header["schema_version"]
            raise InputError(f"{path} uses keypoints schema {version}; this posevid reads <= {SCHEMA_VERSION}", hint="upgrade posevid")
        if keypoints.ndim == 1 and keypoints.size == 0:
            keypoints = keypoints.reshape(0, 1, num_keypoints(header["format"]), 3)
        return cls(
            keypoints, header["format"], header["width"], header["height"], header["fps"], header.get("source", ""),
            frame_indices, dict(header.get("meta") or {}),
        )  # fmt: skip
