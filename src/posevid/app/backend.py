"""The only module of the app that calls into posevid's pose code and pipelines.

Why one thin module: the UI (``ui.py``) deals in form values and file paths; everything that knows how
the pose extractor, the Follow-Your-Pose pipeline or the DreamPose pipeline are called lives here, so a
change in their signatures is fixed in one place. Each ``run_*`` function takes plain values, writes
its files into the job's own folder (mp4 + gif + JSON sidecar) and returns a small dict of results.

Models are loaded once per (kind, path, device, dtype) and reused across requests (:class:`ModelCache`);
a pipeline object keeps per-call state (scheduler timesteps), so each cached model also carries a lock
and two requests never run the same pipeline object at the same time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posevid.errors import InputError
from posevid.utils.outputs import write_sidecar

log = logging.getLogger("posevid.app")

ProgressFn = Callable[[int, int, str], None]


def _no_progress(step: int, total: int, desc: str) -> None:
    return None


# ---------------------------------------------------------------------------------------------------
# Model cache


@dataclass
class _Entry:
    model: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    load_seconds: float = 0.0


class ModelCache:
    """Load each model once; hand out ``(model, lock)`` so callers serialise use of one object."""

    def __init__(self) -> None:
        self._entries: dict[tuple, _Entry] = {}
        self._guard = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}
        self.loads = 0  # how many times a loader actually ran (tests check reuse with it)

    def get(self, key: tuple, loader: Callable[[], Any]) -> _Entry:
        with self._guard:
            entry = self._entries.get(key)
            if entry is not None:
                return entry
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one loader per key; others wait for it instead of loading twice
            with self._guard:
                entry = self._entries.get(key)
            if entry is not None:
                return entry
            start = time.perf_counter()
            model = loader()
            entry = _Entry(model=model, load_seconds=time.perf_counter() - start)
            log.info("loaded %s in %.1f s", key, entry.load_seconds)
            with self._guard:
                self._entries[key] = entry
                self.loads += 1
            return entry

    @contextlib.contextmanager
    def use(self, key: tuple, loader: Callable[[], Any]) -> Iterator[Any]:
        entry = self.get(key, loader)
        with entry.lock:
            yield entry.model


def _torch_dtype(name: str):
    import torch

    table = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if name not in table:
        raise InputError(f"unknown dtype '{name}'", hint="use float32, float16 or bfloat16")
    return table[name]


def load_followyourpose(model: str, device: str, dtype: str):
    from posevid.pipelines.followyourpose import FollowYourPosePipeline

    return FollowYourPosePipeline.from_release(model=model, device=device, dtype=_torch_dtype(dtype))


def load_dreampose(model: str, device: str, dtype: str, epoch: int | None = None, custom_vae: str | None = None):
    from posevid.pipelines.dreampose import DreamPosePipeline

    return DreamPosePipeline.from_pretrained(model, epoch=epoch, custom_vae=custom_vae, device=device, dtype=_torch_dtype(dtype))


def scheduler_names(kind: str) -> list[str]:
    """Scheduler choices of a pipeline, the reference's first."""
    try:
        if kind == "followyourpose":
            from posevid.pipelines.followyourpose import SCHEDULERS
        else:
            from posevid.pipelines.dreampose import SCHEDULERS
        return list(SCHEDULERS)
    except ImportError:  # the pipeline module is not installed: the tab will say so on use
        return ["ddim"] if kind == "followyourpose" else ["pndm"]


# ---------------------------------------------------------------------------------------------------
# Pose


def _extract(video: Path, *, stride: int, smoothing: bool):
    from posevid.pose.extract import extract_keypoints

    return extract_keypoints(str(video), estimator="mediapipe", stride=stride, smoothing=smoothing, progress=False)


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if frame.shape[1] == size[0] and frame.shape[0] == size[1]:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _detection_rate(seq: Any) -> float:
    meta = getattr(seq, "meta", None) or {}
    if "detection_rate" in meta:
        return float(meta["detection_rate"])
    for name in ("detection_rate", "detected_fraction"):
        value = getattr(seq, name, None)
        if value is not None:
            return float(value() if callable(value) else value)
    detected = getattr(seq, "detected", None)
    if detected is not None:
        return float(np.mean(np.asarray(detected, dtype=bool))) if len(detected) else 0.0
    kp = np.asarray(seq.keypoints)
    return float(np.mean(kp[..., 2].reshape(kp.shape[0], -1).max(axis=1) > 0)) if len(kp) else 0.0


def run_pose(video: Path, out_dir: Path, *, style: str = "fyp", smoothing: bool = True, stride: int = 1,
             size: tuple[int, int] | None = None, progress: ProgressFn = _no_progress) -> dict[str, Any]:
    """Keypoints + skeleton video + overlay video for one uploaded clip (files in ``out_dir``)."""
    from posevid.pose.render import overlay, render_sequence
    from posevid.video import iter_frames, probe_video, write_video

    info = probe_video(video)
    stride = max(1, int(stride))
    expected = max(1, (info.num_frames + stride - 1) // stride)
    progress(0, 3, f"detecting poses in {expected} frames")
    seq = _extract(video, stride=stride, smoothing=smoothing)
    keypoints_path = out_dir / "keypoints.json"
    seq.save(keypoints_path)
    fps = info.fps / stride
    src_size = (info.width, info.height)
    out_size = tuple(size) if size else src_size
    progress(1, 3, "rendering the skeleton")
    skeleton_path = write_video(out_dir / "skeleton.mp4", render_sequence(seq, style=style, size=out_size), fps=fps)
    progress(2, 3, "rendering the overlay")
    frames = iter_frames(video, stride=stride)
    overlaid = (overlay(frame, skel) for frame, skel in zip(frames, render_sequence(seq, style=style, size=src_size), strict=False))
    overlay_path = write_video(out_dir / "overlay.mp4", overlaid, fps=fps)
    rate = _detection_rate(seq)
    num_frames = int(np.asarray(seq.keypoints).shape[0])
    settings = {"video": Path(video).name, "style": style, "smoothing": smoothing, "stride": stride, "size": list(out_size),
                "estimator": "mediapipe", "num_frames": num_frames, "detection_rate": rate}
    sidecar = write_sidecar(skeleton_path, settings, kind="pose")
    progress(3, 3, "done")
    return {"keypoints": keypoints_path, "skeleton": Path(skeleton_path), "overlay": Path(overlay_path), "sidecar": sidecar,
            "detection_rate": rate, "num_frames": num_frames, "fps": fps}


def skeleton_from_pose_input(pose_file: Path, pose_type: str, out_dir: Path, *, style: str = "fyp",
                             progress: ProgressFn = _no_progress) -> Path:
    """Turn what the user gave as pose (raw video, skeleton video, keypoints file) into a skeleton video."""
    from posevid.pose.render import render_sequence
    from posevid.video import probe_video, write_video

    suffix = pose_file.suffix.lower()
    if pose_type == "auto":
        pose_type = "keypoints" if suffix in {".json", ".npz"} else ("skeleton video" if _looks_like_skeleton(pose_file) else "raw video")
    if pose_type == "skeleton video":
        return pose_file
    if pose_type == "keypoints":
        seq = _load_keypoints(pose_file)
        size = _sequence_size(seq)
        fps = float(getattr(seq, "fps", 0) or 8.0)
        return Path(write_video(out_dir / "pose_skeleton.mp4", render_sequence(seq, style=style, size=size), fps=fps))
    progress(0, 1, "extracting the pose from the video")
    info = probe_video(pose_file)
    seq = _extract(pose_file, stride=1, smoothing=True)
    seq.save(out_dir / "keypoints.json")
    return Path(write_video(out_dir / "pose_skeleton.mp4", render_sequence(seq, style=style, size=(info.width, info.height)), fps=info.fps))


def _load_keypoints(path: Path):
    from posevid.pose.sequence import KeypointSequence

    return KeypointSequence.load(path)


def _sequence_size(seq: Any) -> tuple[int, int]:
    for names in (("width", "height"), ("image_width", "image_height")):
        w, h = (getattr(seq, n, None) for n in names)
        if w and h:
            return int(w), int(h)
    size = getattr(seq, "size", None) or getattr(seq, "image_size", None)
    if size:
        return int(size[0]), int(size[1])
    return 512, 512


def _looks_like_skeleton(video: Path) -> bool:
    """A skeleton video is mostly pure black: decide from the first frame."""
    from posevid.video import iter_frames

    for frame in iter_frames(video, max_frames=1):
        return float(np.mean(frame.max(axis=2) < 16)) > 0.6
    return False


# ---------------------------------------------------------------------------------------------------
# Text -> video (Follow-Your-Pose)


def _as_video_array(result: Any) -> np.ndarray:
    """Pipeline output (object with ``.frames``/``.videos``, tuple, tensor or array) -> uint8 (T,H,W,3)."""
    for name in ("frames", "videos", "images"):
        if hasattr(result, name):
            result = getattr(result, name)
            break
    if isinstance(result, (tuple, list)) and len(result) and not isinstance(result[0], (int, float)):
        result = result[0] if len(result) == 1 or getattr(result[0], "ndim", 0) >= 4 else np.stack([np.asarray(f) for f in result])
    if hasattr(result, "detach"):
        result = result.detach().cpu().float().numpy()
    arr = np.asarray(result)
    while arr.ndim > 4:
        arr = arr[0]
    if arr.ndim == 4 and arr.shape[1] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(0, 2, 3, 1)  # (T,3,H,W) -> (T,H,W,3)
    if arr.ndim == 4 and arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 3, 0)  # (3,T,H,W) -> (T,H,W,3)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    return arr


def _step_callback(progress: ProgressFn, total: int, desc: str) -> Callable[..., Any]:
    """Accepts both callback styles: ``fn(step, t, latents)`` and diffusers' ``fn(pipe, step, t, kwargs)``."""

    def callback(*args: Any) -> Any:
        if len(args) == 4 and isinstance(args[3], dict):
            progress(int(args[1]) + 1, total, desc)
            return args[3]
        progress(int(args[0]) + 1, total, desc)
        return None

    return callback


def _side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    h = right.shape[0]
    w = max(1, round(left.shape[1] * h / left.shape[0]))
    return np.concatenate([_resize(left, (w, h)), right], axis=1)


def run_text_to_video(pipe: Any, *, skeleton: Path, out_dir: Path, prompt: str, negative_prompt: str | None,
                      frames: int, stride: int, steps: int, guidance: float, scheduler: str, seed: int,
                      width: int, height: int, model: str, pose_source: str | None = None,
                      progress: ProgressFn = _no_progress) -> dict[str, Any]:
    """Follow-Your-Pose text+pose -> mp4, gif, side-by-side mp4 and sidecar in ``out_dir``."""

    from posevid.video import read_frames, write_gif, write_video

    if not prompt or not prompt.strip():
        raise InputError("prompt is empty", hint="describe the video to generate")
    progress(0, steps, "denoising")
    result = pipe(  # seeded exactly as `posevid generate --seed` does, so the app and the CLI give the same video
        prompt, negative_prompt=negative_prompt or None, pose=str(skeleton), video_length=int(frames), frame_stride=int(stride),
        height=int(height), width=int(width), num_inference_steps=int(steps), guidance_scale=float(guidance),
        seed=int(seed), scheduler=scheduler, output_type="uint8",
        callback_on_step_end=_step_callback(progress, steps, "denoising"),
    )
    video = _as_video_array(result)
    fps = 8.0
    mp4 = Path(write_video(out_dir / "result.mp4", video, fps=fps))
    gif = Path(write_gif(out_dir / "result.gif", list(video), fps=fps))
    indices = [i * int(stride) for i in range(len(video))]
    skel = read_frames(skeleton, indices=indices)
    sbs = Path(write_video(out_dir / "side_by_side.mp4", [_side_by_side(s, v) for s, v in zip(skel, video, strict=False)], fps=fps))
    settings = {"prompt": prompt, "negative_prompt": negative_prompt or None, "pose": Path(skeleton).name,
                "pose_source": pose_source or Path(skeleton).name, "video_length": frames,
                "frame_stride": stride, "num_inference_steps": steps, "guidance_scale": guidance, "scheduler": scheduler,
                "seed": seed, "height": height, "width": width, "model": model, "fps": fps}
    sidecar = write_sidecar(mp4, settings, kind="followyourpose")
    return {"mp4": mp4, "gif": gif, "side_by_side": sbs, "sidecar": sidecar, "num_frames": len(video)}


# ---------------------------------------------------------------------------------------------------
# Image -> video (DreamPose)


def run_image_to_video(pipe: Any, *, image: Path, pose_dir: Path, out_dir: Path, s1: float, s2: float, steps: int,
                       seed: int, model: str, scheduler: str | None = None, progress: ProgressFn = _no_progress) -> dict[str, Any]:
    """DreamPose reference image + DensePose folder -> mp4, gif and sidecar in ``out_dir``.

    DreamPose generates one frame per pose, so progress counts frames. The frames shown are the
    min-max stretched ones, as the reference ``test.py`` writes them.
    """

    from posevid.data.densepose import DensePoseSequence
    from posevid.video import write_gif, write_video

    poses = DensePoseSequence.from_folder(pose_dir)
    total = len(poses)
    if scheduler:
        pipe.set_scheduler(scheduler)
    progress(0, total, "generating frames")

    def on_frame(i: int, number: int, raw: np.ndarray, stretched: np.ndarray) -> None:
        progress(i + 1, total, f"frame {i + 1}/{total}")

    # seeded as `posevid animate --seed` (per-frame noise keyed by seed and frame number)
    result = pipe(str(image), poses, s1=float(s1), s2=float(s2), num_inference_steps=int(steps), seed=int(seed),
                  frame_callback=on_frame, show_progress=False)
    video = np.asarray(result.frames_stretched, dtype=np.uint8)
    fps = 30.0  # as `posevid animate` (DreamPose's UBC videos are 30 fps)
    mp4 = Path(write_video(out_dir / "result.mp4", video, fps=fps))
    gif = Path(write_gif(out_dir / "result.gif", list(video), fps=fps))
    settings = {"image": Path(image).name, "frames": list(result.frame_numbers), "s1": s1, "s2": s2, "num_inference_steps": steps,
                "seed": seed, "scheduler": scheduler or "pndm", "model": model, "fps": fps, "notes": list(getattr(pipe, "notes", []))}
    sidecar = write_sidecar(mp4, settings, kind="dreampose")
    return {"mp4": mp4, "gif": gif, "sidecar": sidecar, "num_frames": len(video)}
