"""Turning a skeleton video (or frames) into the pose tensor the Follow-Your-Pose UNet reads.

The reference pipeline reads frames ``0, s, 2s, ...`` of the skeleton video, resizes them with
torchvision 0.14's ``Resize(512)`` (shorter side to 512, longer side ``int()``-truncated, bilinear,
``align_corners=False``, **no antialias**), center-crops 512x512 (offsets ``int(round((H - 512) / 2))``,
banker's rounding) and divides by 255. The released weights were tuned on exactly those pixels, so this
module reproduces them bit for bit for square outputs, and generalises to any ``(height, width)`` by
resizing to *cover* the target and center-cropping. ``antialias=True`` is an opt-in improvement for
heavily down-scaled skeletons (thin lines survive better) that changes the numbers.

Frames are processed one at a time so a long 1080p skeleton video never sits in memory as float32.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from posevid.errors import InputError


def frames_needed(video_length: int, stride: int) -> int:
    """Frames a source must have to give ``video_length`` frames at ``stride``: ``(L - 1) * s + 1``."""
    return (video_length - 1) * stride + 1


def too_short_message(source: str, num_frames: int, video_length: int, stride: int) -> str:
    """One line saying what fits: the longest clip at this stride and the largest stride for this length."""
    max_length = (num_frames - 1) // stride + 1 if num_frames > 0 else 0
    parts = [
        f"pose video {source} has {num_frames} frame(s) but video_length {video_length} at stride {stride} "
        f"needs {frames_needed(video_length, stride)}",
        f"the maximum video_length at stride {stride} is {max_length} (--frames)",
    ]
    if video_length > 1:
        max_stride = (num_frames - 1) // (video_length - 1)
        if max_stride >= 1:
            parts.append(f"the maximum stride for {video_length} frames is {max_stride} (--stride)")
        else:
            parts.append(f"{video_length} frames do not fit even at stride 1")
    return "; ".join(parts)


def cover_size(src_h: int, src_w: int, height: int, width: int) -> tuple[int, int]:
    """Size that covers ``(height, width)`` keeping the aspect ratio, long side truncated like torchvision 0.14.

    For a square target this is exactly ``Resize(size)``: shorter side -> size, longer side
    ``int(size * long / short)``. Integer arithmetic gives the same result as that float expression
    (Python's true division is correctly rounded) without float surprises.
    """
    if height * src_w >= width * src_h:  # height is the binding side
        return height, (src_w * height) // src_h
    return (src_h * width) // src_w, width


def resize_cover_crop(frame: torch.Tensor, height: int, width: int, *, antialias: bool = False) -> torch.Tensor:
    """Resize ``(N, C, h, w)`` float 0..255 frames to cover ``(height, width)``, then center-crop."""
    src_h, src_w = frame.shape[-2:]
    new_h, new_w = cover_size(src_h, src_w, height, width)
    if (new_h, new_w) != (src_h, src_w):  # torchvision returns the input untouched at the same size
        frame = F.interpolate(frame, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=antialias)
    top = int(round((new_h - height) / 2.0))
    left = int(round((new_w - width) / 2.0))
    return frame[..., top : top + height, left : left + width]


def _prepare_frames(frames: Iterable[np.ndarray], height: int, width: int, antialias: bool) -> torch.Tensor:
    out = []
    for img in frames:
        img = np.asarray(img)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise InputError(f"pose frames must be uint8 RGB arrays of shape (H, W, 3), got {img.dtype} {img.shape}")
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0).to(torch.float32)  # 0..255, as the reference
        out.append(resize_cover_crop(x, height, width, antialias=antialias)[0] / 255.0)
    return torch.stack(out)  # (T, 3, H, W) in [0, 1]


def _probed(path: str | os.PathLike, video_length: int, stride: int):
    """``path``'s :class:`~posevid.video.VideoInfo` (probed unless it is one already), checked long enough by its header."""
    from posevid.video import VideoInfo, probe_video

    info = path if isinstance(path, VideoInfo) else probe_video(path)  # InputError for missing/empty/corrupt/image files
    if info.num_frames < frames_needed(video_length, stride):
        raise InputError(too_short_message(info.path, info.num_frames, video_length, stride))
    return info


def _too_short_after_decoding(path: str | os.PathLike, video_length: int, stride: int) -> InputError:
    """The header promised enough frames but fewer decode (an optimistic estimate from the duration, a truncated
    file): the message names the count that really decodes, so the decode is repeated to count, on this error path only."""
    from posevid.video import iter_frames

    real = sum(1 for _ in iter_frames(path))
    return InputError(too_short_message(os.fspath(path), real, video_length, stride))


def read_pose_video(
    path: str | os.PathLike, *, video_length: int, stride: int, height: int, width: int, antialias: bool = False
) -> torch.Tensor:
    """Frames ``0, s, ..., (L-1)s`` of a skeleton video as a ``(1, L, 3, height, width)`` float tensor in [0, 1].

    ``path`` may be the video's :class:`~posevid.video.VideoInfo` (from ``probe_video``): it is not probed again.
    """
    from posevid.video import VideoInfo, iter_frames

    info = _probed(path if isinstance(path, VideoInfo) else Path(path), video_length, stride)
    frames = list(iter_frames(info.path, indices=[i * stride for i in range(video_length)]))
    if len(frames) < video_length:
        raise _too_short_after_decoding(info.path, video_length, stride)
    return _prepare_frames(frames, height, width, antialias).unsqueeze(0)


def prepare_pose(
    pose,
    *,
    video_length: int | None,
    stride: int,
    height: int,
    width: int,
    antialias: bool = False,
) -> torch.Tensor:
    """Any supported pose input -> ``(b, L, 3, height, width)`` float32 in [0, 1] on the CPU.

    * a path: a skeleton video, sampled at ``stride`` (the reference's ``frame_skeleton_stride``); its
      :class:`~posevid.video.VideoInfo` works as the path and saves probing it again;
    * a uint8 array ``(T, H, W, 3)``: the decoded skeleton video, sampled the same way;
    * a float tensor ``(f, 3, H, W)`` or ``(b, f, 3, H, W)`` in [0, 1]: frames already chosen, used as they
      are (resized/cropped only when their size differs from ``(height, width)``).
    """
    if stride < 1:
        raise InputError(f"frame stride must be >= 1, got {stride}")
    if isinstance(pose, (str, os.PathLike)):
        return read_pose_video(pose, video_length=video_length or 8, stride=stride, height=height, width=width, antialias=antialias)
    if isinstance(pose, np.ndarray):
        if pose.dtype != np.uint8 or pose.ndim != 4 or pose.shape[-1] != 3:
            raise InputError(f"a pose array must be uint8 (T, H, W, 3), got {pose.dtype} {pose.shape}")
        length = video_length or 8
        if pose.shape[0] < frames_needed(length, stride):
            raise InputError(too_short_message("array", pose.shape[0], length, stride))
        return _prepare_frames(pose[: frames_needed(length, stride) : stride], height, width, antialias).unsqueeze(0)
    if isinstance(pose, torch.Tensor):
        if pose.ndim == 4:
            pose = pose.unsqueeze(0)
        if pose.ndim != 5 or pose.shape[2] != 3:
            raise InputError(f"a pose tensor must be (f, 3, H, W) or (b, f, 3, H, W), got {tuple(pose.shape)}")
        if not pose.is_floating_point():
            raise InputError(f"a pose tensor must be float in [0, 1], got {pose.dtype} (pass uint8 frames as a numpy (T, H, W, 3) array)")
        if video_length is not None and pose.shape[1] != video_length:
            raise InputError(f"the pose tensor has {pose.shape[1]} frames but video_length is {video_length}")
        pose = pose.detach().to("cpu", torch.float32)
        if tuple(pose.shape[-2:]) != (height, width):
            b, f = pose.shape[:2]
            flat = resize_cover_crop(pose.reshape(b * f, 3, *pose.shape[-2:]) * 255.0, height, width, antialias=antialias) / 255.0
            pose = flat.reshape(b, f, 3, height, width)
        return pose
    raise InputError(
        f"unsupported pose input of type {type(pose).__name__}", hint="pass a skeleton video path, a uint8 array or a float tensor"
    )


# ----------------------------------------------------------------------------------------------- frames served per window
class PoseFrames:
    """Prepared pose frames ``(b, n, 3, H, W)`` in [0, 1], served window by window (``b`` = 1 or one per video)."""

    num_frames: int
    batch: int = 1

    def window(self, start: int, stop: int) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class TensorPoseFrames(PoseFrames):
    def __init__(self, pose: torch.Tensor) -> None:
        self.pose = pose
        self.num_frames = pose.shape[1]
        self.batch = pose.shape[0]

    def window(self, start: int, stop: int) -> torch.Tensor:
        return self.pose[:, start:stop]

    def tensor(self) -> torch.Tensor:
        return self.pose


class FilePoseFrames(PoseFrames):
    """Pose frames prepared one at a time from the skeleton video into a temporary float32 file.

    Reading a window back is an ``np.fromfile`` of contiguous bytes (no memory map, so the resident set
    stays one window), and the pixels are exactly those of :func:`prepare_pose`.
    """

    def __init__(self, path: str | os.PathLike, *, video_length: int, stride: int, height: int, width: int, antialias: bool = False):
        from posevid.video import iter_frames

        path = _probed(path, video_length, stride).path
        self.shape = (3, height, width)
        self.frame_bytes = 3 * height * width * 4
        fd, name = tempfile.mkstemp(prefix="posevid-pose-", suffix=".f32")
        self.file = Path(name)
        count = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for frame in iter_frames(path, indices=[i * stride for i in range(video_length)]):
                    fh.write(_prepare_frames([frame], height, width, antialias)[0].numpy().tobytes())
                    count += 1
            if count < video_length:
                raise InputError(too_short_message(str(path), count, video_length, stride))
        except BaseException:
            self.file.unlink(missing_ok=True)
            raise
        self.num_frames = count

    def window(self, start: int, stop: int) -> torch.Tensor:
        data = np.fromfile(self.file, dtype=np.float32, count=(stop - start) * self.frame_bytes // 4, offset=start * self.frame_bytes)
        return torch.from_numpy(data).view(1, stop - start, *self.shape)

    def close(self) -> None:
        self.file.unlink(missing_ok=True)

    def __del__(self) -> None:  # best effort; close() is the real clean-up
        try:
            self.close()
        except Exception:
            pass
