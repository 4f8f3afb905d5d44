"""Whatever the user passes as ``--pose``, get a skeleton video for it.

* a skeleton video (black frames with thin coloured lines) is used as is: :func:`is_skeleton_video` looks at
  a handful of early frames only, so it costs a few milliseconds;
* a keypoints file (``.json`` / ``.npz`` from ``posevid pose``) is rendered;
* any other video is run through pose extraction and rendered.

Rendered results are cached under ``<POSEVID_CACHE or ~/.cache/posevid>/pose/`` keyed by a hash of the
input's bytes and the settings, so asking twice costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from posevid.errors import InputError
from posevid.pose.options import POSE_DEFAULTS, PoseOptions
from posevid.utils.cache import cache_key, cache_root
from posevid.utils.media import KEYPOINT_SUFFIXES

if TYPE_CHECKING:
    from posevid.video import VideoInfo

_PROBE_INDICES = (0, 6, 12, 18, 24, 30, 45, 60)


def frame_is_skeleton(frame: np.ndarray) -> bool | None:
    """True / False for a frame that looks / does not look like a skeleton render; None when all black.

    A skeleton render is mostly pure black and its lit pixels are saturated colours; photos and footage,
    even dark ones, have grey-ish lit pixels and a noisy background.
    """
    f = frame.astype(np.int16)
    mx, mn = f.max(axis=2), f.min(axis=2)
    lit = mx > 60
    lit_frac = float(lit.mean())
    if lit_frac < 1e-4:
        return None if float((mx < 24).mean()) > 0.99 else False
    dark_frac = float((mx < 24).mean())
    saturated = ((mx[lit] - mn[lit]) / np.maximum(mx[lit], 1)) > 0.45
    return bool(dark_frac > 0.8 and lit_frac < 0.2 and saturated.mean() > 0.6)


def _probe_frames(path: str | os.PathLike) -> list[np.ndarray]:
    from posevid.video import iter_frames

    return list(iter_frames(path, indices=_PROBE_INDICES))


def _frames_are_skeleton(frames: list[np.ndarray]) -> bool:
    decided = [v for v in map(frame_is_skeleton, frames) if v is not None]
    return bool(decided) and all(decided)


def is_skeleton_video(path: str | os.PathLike) -> bool:
    """Cheap test on up to 8 early frames: all non-black ones must look like skeleton renders."""
    return _frames_are_skeleton(_probe_frames(path))


_STYLE_PALETTES = {
    "fyp": ((0, 255, 0), (0, 128, 255), (255, 153, 51)),
    "mmpose": ((0, 204, 0), (204, 102, 0), (41, 122, 204)),  # MMPose 1.x colours at alpha 0.8 on black
}


def skeleton_style_of(path: str | os.PathLike) -> str:
    """``fyp``, ``mmpose`` or ``unknown``: which palette the lit pixels of a skeleton video's early frames use.

    Why: the released FYP pose encoder saw official-style skeletons only; team13's MMPose-1.x renders swap
    the right-limb and torso colours and are out of distribution, which deserves a warning.
    """
    return _style_of_frames(_probe_frames(path))


def _style_of_frames(frames: list[np.ndarray]) -> str:
    names = [name for name, colours in _STYLE_PALETTES.items() for _ in colours]
    palette = np.array([c for colours in _STYLE_PALETTES.values() for c in colours], np.float32)
    counts = dict.fromkeys(_STYLE_PALETTES, 0)
    for frame in frames:
        f = frame[::2, ::2]
        lit = f.max(axis=-1) > 100
        if not lit.any():
            continue
        dist = np.linalg.norm(f[lit].astype(np.float32)[:, None] - palette[None], axis=-1)
        close = dist.min(axis=1) < 40
        for i in dist[close].argmin(axis=1):
            counts[names[i]] += 1
    total = sum(counts.values())
    if total == 0:
        return "unknown"
    best = max(counts, key=counts.get)
    return best if counts[best] > 0.7 * total else "unknown"


POSE_KINDS = ("auto", "skeleton video", "keypoints", "raw video")


def skeleton_video_for(
    path: str | os.PathLike,
    *,
    style: str = POSE_DEFAULTS.style,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    estimator: str = POSE_DEFAULTS.estimator,
    size: tuple[int, int] | None = None,
    fit: str = POSE_DEFAULTS.fit,
    kind: str = "auto",
    options: PoseOptions | None = None,
    return_info: bool = False,
    on_extract: Callable[[], None] | None = None,
) -> Path | tuple[Path, VideoInfo]:
    """Path of a skeleton video for ``path`` (a skeleton video, a keypoints file, or a raw video).

    ``kind`` says what ``path`` is (``auto`` tells from the suffix and a few frames). A raw video or a keypoints
    file is drawn the way ``posevid pose`` draws it by default (``options``: ``None`` means
    :func:`~posevid.pose.options.options_from_flags` with its defaults: zero-phase smoothing, and for mediapipe
    the calibrated limb rule and, in the ``fyp`` style, the BlazePose -> COCO-17 joint correction), so
    ``generate --pose RAW_VIDEO``, the app and ``posevid pose`` feed the model the same skeleton.

    ``return_info=True`` returns ``(path, VideoInfo)``, the skeleton video's probe. When ``path`` is itself a skeleton
    video the probe comes from the same open that decoded the early frames to classify it, so ``posevid generate``
    opens a skeleton video twice in all: here, and once to read the pose frames (the info passed along instead of a path).

    ``on_extract`` is called once, just before a raw video's pose extraction starts (the slow part; not on a cache
    hit), so a front end can say so without classifying the input itself.

    Raises :class:`~posevid.errors.InputError` for unreadable inputs and
    :class:`~posevid.errors.NoPersonError` when a raw video shows nobody.
    """
    from posevid.pose.extract import extract_keypoints, fit_sequence
    from posevid.pose.options import options_from_flags
    from posevid.pose.render import STYLES, render_sequence
    from posevid.pose.sequence import KeypointSequence
    from posevid.utils.outputs import write_sidecar
    from posevid.video import probe_and_sample, probe_video, write_video

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"pose input not found: {path}", hint="pass a skeleton video, a raw video or a keypoints .json/.npz")
    if style not in STYLES:
        raise InputError(f"unknown skeleton style '{style}'", hint=f"use one of {', '.join(STYLES)}")
    if kind not in POSE_KINDS:
        raise InputError(f"unknown pose input kind '{kind}'", hint=f"use one of {', '.join(POSE_KINDS)}")
    info, frames = None, None
    if kind == "auto" and path.suffix.lower() in KEYPOINT_SUFFIXES:
        kind = "keypoints"
    if kind == "auto" or (kind == "skeleton video" and style == "fyp"):  # one read of the early frames serves all three
        info, frames = probe_and_sample(path, _PROBE_INDICES)
    if kind == "auto":
        kind = "skeleton video" if _frames_are_skeleton(frames) else "raw video"
    if kind == "skeleton video":
        if style == "fyp" and _style_of_frames(frames) == "mmpose":
            import warnings

            warnings.warn(
                f"{path.name} is drawn in the MMPose-1.x style (team13 colours, thin lines, dots), not the official "
                "Follow-Your-Pose style the pose encoder was trained on; results may suffer. Re-render it from the "
                "raw video with 'posevid pose RAW --out DIR' (default --style fyp).",
                stacklevel=2,
            )
        return (path, info or probe_video(path)) if return_info else path
    seq = KeypointSequence.load(path) if kind == "keypoints" else None
    if options is None:  # a keypoints file is drawn by the rule of the estimator that made it
        made_by = str(seq.meta.get("estimator", "")) if seq is not None else estimator
        options = options_from_flags(estimator=made_by, style=style)
    # v3 (issue 20): a raw video's keypoints follow its own segment cuts, no longer the machine's core count
    settings = {
        "style": style, "estimator": estimator, "size": list(size) if size else None, "fit": fit, "kind": kind,
        "smoothing": options.smoothing, "limb_rule": options.limb_rule, "joint_correction": options.joint_correction, "v": 3,
    }  # fmt: skip
    key = cache_key(path, settings)
    root = Path(cache_dir).expanduser() if cache_dir else cache_root() / "pose"
    out = root / f"{path.stem}-{key}.mp4"
    if out.is_file():
        return (out, probe_video(out)) if return_info else out
    if seq is None:
        if on_extract is not None:
            on_extract()
        seq = extract_keypoints(path, estimator=estimator, smoothing=options.smoothing, progress=progress)
        seq.save(out.with_suffix(".keypoints.npz"))
    seq = fit_sequence(options.prepare(seq), size, fit)
    write_video(out, render_sequence(seq, style=style, threshold=options.draw_threshold), fps=seq.fps)
    write_sidecar(out, {"input": str(path), **settings, "detection_rate": seq.meta.get("detection_rate")}, kind="skeleton")
    return (out, probe_video(out)) if return_info else out
