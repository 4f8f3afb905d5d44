"""DreamPose's pose files: DensePose UV maps on disk, the 5-frame window, and detectron2 dump conversion.

(The DensePose R-CNN that makes these files from a video is :mod:`posevid.densepose`; this module only reads and
writes DreamPose's pose input.)

Formats read (one file per frame, frame number = the last integer in the file name):

* ``frame_N_densepose.npy`` (the reference format written by DreamPose's ``utils/densepose.py``): a
  ``(2, H, W)`` float array, channel 0 = U, channel 1 = V in [0, 1], 0 outside the body. Loaded with
  ``allow_pickle=False``. Zero-padded numbers (``frame_001_densepose.npy``) are read numerically (the
  reference cannot read them at all); two files with the same number are an error.
* UV images (``--pose-format uv``): 8-bit RGB PNGs with **U in red, V in green** (value / 255), blue ignored,
  background where both are 0.
* DensePose IUV images (``--pose-format iuv``): the DensePose convention written with OpenCV, i.e. the file's
  BGR channels are (I, U, V): read as RGB that is **R = V, G = U, B = I** (part index 0..24, 0 = background);
  U, V = value / 255 and zeroed where I = 0.
* a detectron2 ``apply_net.py dump`` pickle, converted by :func:`convert_densepose_dump` *without*
  detectron2, through :class:`DumpUnpickler` which only admits tensor/array builders and stand-ins
  for the DensePose result classes (anything else, e.g. ``os.system``, is refused before it can run).

Gaps in the frame numbers are an error by default: the reference's window would silently use the centre
frame there. ``allow_gaps=True`` (``--allow-gaps``) accepts them.

Window (reference ``test.py``): frame t uses poses t-2..t+2; a missing neighbour is replaced by the centre
pose t (``window="reference"``) or by the nearest existing frame (``window="nearest"``). Each pose is resized
bilinearly (``align_corners=False``) to the image size, mapped by ``2*uv - 1`` (background -> -1) and the 5
are concatenated in time order as (U, V) pairs -> ``(1, 10, H, W)``. The pipeline then resizes it to the
latent size with nearest sampling.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posevid.densepose.dreampose_format import LAST_INT, dump_entry_to_uv, frame_number
from posevid.errors import InputError
from posevid.utils.media import IMAGE_SUFFIXES
from posevid.utils.pickles import RestrictedUnpickler, UnsafePickleError, numpy_globals, pickle_module

WINDOW_OFFSETS = (-2, -1, 0, 1, 2)
WINDOW_RULES = ("reference", "nearest")
POSE_FORMATS = ("auto", "npy", "uv", "iuv")


# --------------------------------------------------------------------------------------------------
# Folder scanning and loading
# --------------------------------------------------------------------------------------------------
def scan_pose_folder(folder: str | os.PathLike, pose_format: str = "auto", *, allow_gaps: bool = False) -> tuple[dict[int, Path], str]:
    """``{frame number: file}`` and the detected format of a pose folder; one-line errors for bad folders."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"pose folder not found: {folder}", hint="pass a folder of frame_N_densepose.npy files or a dump .pkl")
    if pose_format not in POSE_FORMATS:
        raise InputError(f"unknown pose format {pose_format!r}", hint=f"use one of {', '.join(POSE_FORMATS)}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    npys = [p for p in files if p.name.endswith("_densepose.npy")]
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if pose_format == "auto":
        pose_format = "npy" if npys else ("uv" if images else "npy")
    chosen = npys if pose_format == "npy" else images
    if not chosen:
        what = "frame_N_densepose.npy files" if pose_format == "npy" else "UV images"
        raise InputError(f"no {what} in {folder}", hint="convert DensePose output first (posevid animate --densepose dump.pkl)")
    frames: dict[int, Path] = {}
    padded = []
    for p in chosen:
        n = frame_number(p.name)
        if n is None:
            raise InputError(f"cannot read a frame number from {p.name} in {folder}", hint="name pose files frame_N_densepose.npy")
        if n in frames:
            raise InputError(f"two pose files for frame {n} in {folder}: {frames[n].name} and {p.name}", hint="remove one of them")
        digits = LAST_INT.search(p.name[: -len("_densepose.npy")] if pose_format == "npy" else p.stem).group(1)
        if len(digits) > 1 and digits.startswith("0"):
            padded.append(p.name)
        frames[n] = p
    if padded:
        warnings.warn(
            f"zero-padded frame numbers in {folder} (e.g. {padded[0]}) are read numerically; the reference test.py cannot read them",
            stacklevel=2,
        )
    numbers = sorted(frames)
    gaps = [b for a, b in zip(numbers, numbers[1:], strict=False) if b != a + 1]
    if gaps and not allow_gaps:
        first = gaps[0]
        prev = numbers[numbers.index(first) - 1]
        raise InputError(
            f"pose frames in {folder} have gaps (e.g. {prev} -> {first}; {len(gaps)} gap(s)); "
            "the 5-frame window would use the centre pose there",
            hint="fill the missing frames or pass --allow-gaps",
        )
    return {n: frames[n] for n in numbers}, pose_format


def load_uv(path: str | os.PathLike, pose_format: str = "npy") -> np.ndarray:
    """One frame as a float32 ``(2, H, W)`` array (U, V in [0, 1], 0 = background)."""
    path = Path(path)
    if pose_format == "npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, EOFError) as exc:
            msg = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
            raise InputError(f"cannot read {path}: {msg}", hint="pose .npy files must hold plain arrays") from None
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc}") from None
        if arr.ndim != 3 or arr.shape[0] != 2:
            raise InputError(f"{path} holds an array of shape {arr.shape}; expected (2, H, W) U,V maps")
        return arr.astype(np.float32)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read UV image {path}: {exc}") from None
    if pose_format == "uv":
        return np.stack([rgb[..., 0], rgb[..., 1]]) / 255.0
    if pose_format == "iuv":
        body = rgb[..., 2] > 0
        return np.stack([rgb[..., 1] * body, rgb[..., 0] * body]) / 255.0
    raise InputError(f"unknown pose format {pose_format!r}", hint=f"use one of {', '.join(POSE_FORMATS)}")


def window_frames(frames: Sequence[int], t: int, rule: str = "reference") -> list[int]:
    """Frame numbers of the 5 poses used for target frame ``t``.

    ``reference``: t+k if that frame exists, else t (frames {0,1,2}: t=1 -> [1, 0, 1, 2, 1]).
    ``nearest``: t+k if it exists, else the existing frame closest to t+k (ties -> the one nearer t).
    """
    if rule not in WINDOW_RULES:
        raise InputError(f"unknown window rule {rule!r}", hint="use 'reference' or 'nearest'")
    have = set(frames)
    if t not in have:
        raise InputError(f"frame {t} has no pose file", hint="choose frames that exist in the pose folder")
    out = []
    for k in WINDOW_OFFSETS:
        n = t + k
        if n in have:
            out.append(n)
        elif rule == "reference":
            out.append(t)
        else:
            out.append(min(have, key=lambda f, n=n: (abs(f - n), abs(f - t))))
    return out


def pose_tensor(uvs: Sequence[np.ndarray], size: tuple[int, int]):
    """5 ``(2, h, w)`` UV maps -> ``(1, 10, H, W)`` float32 tensor in the model's space (``2*uv - 1``)."""
    import torch
    import torch.nn.functional as F

    parts = []
    for uv in uvs:
        x = torch.from_numpy(np.ascontiguousarray(uv, dtype=np.float32))[None]
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
        parts.append(x * 2.0 - 1.0)  # == Normalize(0.5, 0.5)
    return torch.cat(parts, dim=1)


@dataclass
class DensePoseSequence:
    """A pose folder: frame numbers, their files, and the windowed model input per frame."""

    files: dict[int, Path]
    pose_format: str = "npy"
    window: str = "reference"
    _cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def from_folder(
        cls, folder: str | os.PathLike, *, pose_format: str = "auto", window: str = "reference", allow_gaps: bool = False
    ) -> DensePoseSequence:
        files, fmt = scan_pose_folder(folder, pose_format, allow_gaps=allow_gaps)
        if window not in WINDOW_RULES:
            raise InputError(f"unknown window rule {window!r}", hint="use 'reference' or 'nearest'")
        return cls(files, fmt, window)

    @property
    def frames(self) -> list[int]:
        return list(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def uv(self, n: int) -> np.ndarray:
        if n not in self._cache:
            if len(self._cache) > 8:  # a sliding window only needs the last few
                self._cache.pop(next(iter(self._cache)))
            self._cache[n] = load_uv(self.files[n], self.pose_format)
        return self._cache[n]

    def window_of(self, t: int) -> list[int]:
        return window_frames(self.frames, t, self.window)

    def tensor(self, t: int, size: tuple[int, int]):
        """``(1, 10, H, W)`` pose input for target frame ``t`` at image size ``size`` = (H, W)."""
        return pose_tensor([self.uv(n) for n in self.window_of(t)], size)

    def select(self, spec: str | None) -> list[int]:
        """Frames chosen by ``a:b`` (python slice over the sorted frame list), ``a:b:s`` or ``n`` (one frame number)."""
        frames = self.frames
        if not spec:
            return frames
        try:
            if ":" in spec:
                parts = [int(p) if p.strip() else None for p in spec.split(":")]
                chosen = frames[slice(*parts)]
            else:
                n = int(spec)
                if n not in self.files:
                    raise InputError(f"--frames {spec}: frame {n} has no pose file (frames {frames[0]}..{frames[-1]})")
                chosen = [n]
        except ValueError:
            raise InputError(f"--frames {spec!r} is not a frame number or an a:b slice") from None
        if not chosen:
            raise InputError(f"--frames {spec} selects no frame (there are {len(frames)} frames)")
        return chosen


# --------------------------------------------------------------------------------------------------
# detectron2 DensePose dump -> .npy, without detectron2 and without arbitrary unpickling
# --------------------------------------------------------------------------------------------------
class _Record:
    """Stand-in for a detectron2/DensePose result object: an attribute bag filled by pickle's BUILD."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict_state, slots_state)
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            state = merged
        if isinstance(state, dict):
            self.__dict__.update(state)


def _stand_in(module: str, name: str) -> type:
    return type(name, (_Record,), {"__module__": module, "__qualname__": name})


_RESULT_CLASSES = ("DensePoseChartResult", "DensePoseChartResultWithConfidences", "DensePoseChartResultQuantized")
_STAND_INS: dict[tuple[str, str], type] = {}
for _mod in ("densepose.structures.chart_result", "densepose.structures"):
    for _name in _RESULT_CLASSES:
        _STAND_INS[(_mod, _name)] = _stand_in(_mod, _name)
for _mod in ("detectron2.structures.boxes", "detectron2.structures"):
    _STAND_INS[(_mod, "Boxes")] = _stand_in(_mod, "Boxes")


def _load_storage_from_bytes(data: bytes):
    """Safe replacement for ``torch.storage._load_from_bytes`` (legacy pickled tensors)."""
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


@functools.cache
def _dump_globals() -> dict[tuple[str, str], Any]:
    import copyreg

    import torch

    allowed = numpy_globals()
    allowed.update({
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
        ("copyreg", "_reconstructor"): copyreg._reconstructor,
        ("builtins", "object"): object,
    })  # fmt: skip
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "scalar")] = np.core.multiarray.scalar
    allowed.update(_STAND_INS)
    return allowed


class DumpUnpickler(RestrictedUnpickler):
    """The unpickler of ``apply_net.py dump`` files: tensor/array builders and stand-ins for the result classes only."""

    what = "a DensePose dump"
    hint = "only detectron2 'apply_net.py dump' files are accepted; never open pickles from untrusted sources"
    allowed_globals = staticmethod(_dump_globals)


def load_densepose_dump(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a ``apply_net.py dump`` file (``pickle.dump`` or ``torch.save`` flavour) safely."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"DensePose dump not found: {path}", hint="create it with detectron2's apply_net.py dump")
    try:
        if zipfile.is_zipfile(path):
            import torch

            data = torch.load(str(path), map_location="cpu", weights_only=False, pickle_module=pickle_module(DumpUnpickler))
        else:
            with open(path, "rb") as fh:
                data = DumpUnpickler(fh).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except Exception as exc:
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read DensePose dump {path}: {msg}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise InputError(f"{path} is not a DensePose dump (expected a list of per-image dicts, got {type(data).__name__})")
    return data


def convert_densepose_dump(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    image_size: tuple[int, int] | None = None,
    image_root: str | os.PathLike | None = None,
    empty: str = "error",
) -> list[Path]:
    """Convert a dump into reference ``<image stem>_densepose.npy`` files in ``out_dir``; returns the paths.

    The image size (the canvas) comes from ``image_size`` = (H, W) if given, else from the image file named in
    the dump (looked up as written, then under ``image_root``). Frame number = last integer of the image
    name, else the entry's index (``frame_<i>_densepose.npy``).
    """
    entries = load_densepose_dump(path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, entry in enumerate(entries):
        name = str(entry.get("file_name", f"frame_{i}.png"))
        size = image_size or _image_size(name, image_root, dump=path)
        stem = Path(name).stem
        target = out / (f"{stem}_densepose.npy" if frame_number(stem) is not None else f"frame_{i}_densepose.npy")
        np.save(target, dump_entry_to_uv(entry, size, empty=empty), allow_pickle=False)
        written.append(target)
    if not written:
        raise InputError(f"DensePose dump {path} holds no images")
    return written


def _image_size(name: str, root, *, dump) -> tuple[int, int]:
    from PIL import Image

    candidates = [Path(name)] + ([Path(root) / Path(name).name] if root else []) + [Path(dump).parent / Path(name).name]
    for c in candidates:
        if c.is_file():
            with Image.open(c) as im:
                return im.height, im.width
    raise InputError(
        f"cannot find image {name} named in the DensePose dump (its size sets the pose canvas)",
        hint="pass --densepose-size WxH or --densepose-images DIR",
    )


def _is_pickle_path(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".pkl", ".pickle", ".pth", ".pt")


def resolve_pose_source(
    source: str | os.PathLike,
    work_dir: str | os.PathLike,
    *,
    image_size: tuple[int, int] | None = None,
    image_root: str | os.PathLike | None = None,
    empty: str = "error",
) -> Path:
    """A pose folder for ``source``: the folder itself, or ``work_dir`` filled from a dump pickle."""
    source = Path(source)
    if _is_pickle_path(source):
        convert_densepose_dump(source, work_dir, image_size=image_size, image_root=image_root, empty=empty)
        return Path(work_dir)
    if source.is_file():
        raise InputError(f"{source} is neither a pose folder nor a DensePose dump (.pkl)")
    return source


__all__ = [
    "DensePoseSequence",
    "DumpUnpickler",
    "UnsafePickleError",
    "convert_densepose_dump",
    "load_densepose_dump",
    "load_uv",
    "pose_tensor",
    "resolve_pose_source",
    "scan_pose_folder",
    "window_frames",
]
