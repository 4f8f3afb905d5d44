"""Training data sets over a prepared folder, with randomness that is a pure function of a sample key.

Every ``__getitem__`` receives ``(index, key)`` from :class:`posevid.training.sampler.ResumableSampler`;
``key`` seeds a private ``numpy.random.Generator`` for this sample only (random start frame, caption chunk,
crops). So the data a step sees depends on (seed, epoch, position) and nothing else: not on DataLoader
workers, not on the number of processes, not on whether the run was resumed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from posevid.data.captions import caption_for_frames
from posevid.data.manifest import load_manifest
from posevid.errors import InputError

log = logging.getLogger(__name__)


def sample_rng(key: Any) -> np.random.Generator:
    return np.random.default_rng(list(key) if isinstance(key, (tuple, list)) else int(key))


def resize_center_crop(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(N, C, H, W)`` uint8 -> uint8: scale so the frame covers ``height x width``, then centre-crop.

    Matches the reference ``Resize(size) + CenterCrop(size)`` for square outputs: bilinear without
    antialias (torchvision 0.14 tensor semantics), rounded back to uint8, crop offset ``round((H-h)/2)``.
    """
    _, _, h, w = frames.shape
    scale = max(height / h, width / w)
    if h <= w:  # torchvision Resize(int) scales the shorter side and truncates the longer one
        nh, nw = max(height, round(h * scale)), max(width, int(w * scale))
    else:
        nh, nw = max(height, int(h * scale)), max(width, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(frames.float(), size=(nh, nw), mode="bilinear", align_corners=False, antialias=False)
        frames = x.round().clamp(0, 255).to(torch.uint8)
    top, left = int(round((nh - height) / 2)), int(round((nw - width) / 2))
    return frames[:, :, top : top + height, left : left + width]


def reference_frame_indices(num_frames: int, n: int, stride: int, start: int, rng: np.random.Generator) -> list[int] | None:
    """The reference sampling: candidates ``range(start, len, stride)``; if fewer than ``n``, stride ``len // n``;
    a random run of ``n`` consecutive candidates. ``None`` when the clip cannot give ``n`` frames."""
    cand = list(range(start, num_frames, stride))
    if len(cand) < n:
        stride = (num_frames - start) // n
        if stride < 1:
            return None
        cand = list(range(start, num_frames, stride))
    first = int(rng.integers(0, len(cand) - n + 1))
    return cand[first : first + n]


class VideoClipDataset(Dataset):
    """FYP stage 2: ``n_sample_frames`` frames of a captioned clip, pixels in [-1, 1], ``(f, c, h, w)``.

    ``short_clips``: ``"fallback"`` keeps the reference (stride ``len // n`` for short clips; clips with
    fewer than ``n`` frames are skipped); ``"skip"`` also skips clips shorter than ``(n-1)*rate+1``.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike,
        *,
        n_sample_frames: int = 8,
        sample_frame_rate: int = 4,
        width: int = 512,
        height: int = 512,
        sample_start_idx: int = 0,
        short_clips: str = "fallback",
    ) -> None:
        _, entries, _ = load_manifest(data_dir, kind=("charades", "hdvila"))
        self.root = Path(data_dir)
        self.n, self.rate, self.width, self.height, self.start = n_sample_frames, sample_frame_rate, width, height, sample_start_idx
        self.items: list[dict[str, Any]] = []
        self.skipped: list[tuple[str, str]] = []
        need_strict = (n_sample_frames - 1) * sample_frame_rate + 1 + sample_start_idx
        for e in entries:
            usable = e.get("num_frames", 0) - sample_start_idx
            reason = None
            if usable < n_sample_frames:
                reason = f"{e.get('num_frames')} frames, fewer than n_sample_frames={n_sample_frames} (+ start {sample_start_idx})"
            elif short_clips == "skip" and e.get("num_frames", 0) < need_strict:
                reason = f"{e.get('num_frames')} frames, fewer than the {need_strict} that n_sample_frames x sample_frame_rate needs"
            elif usable < need_strict - sample_start_idx:
                log.info("clip %s: %d frames < %d, using the reference stride fallback len//n", e["id"], e["num_frames"], need_strict)
            if reason:
                log.warning("training data: skipping clip %s: %s", e["id"], reason)
                self.skipped.append((e["id"], reason))
            else:
                self.items.append(e)
        if not self.items:
            raise InputError(
                f"no usable clip in {data_dir} for n_sample_frames={n_sample_frames}, sample_frame_rate={sample_frame_rate}"
                f" ({len(self.skipped)} skipped)",
                hint="use shorter clips settings (train_data.n_sample_frames / sample_frame_rate) or longer clips",
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item) -> dict[str, Any]:
        from posevid.video import read_frames

        index, key = item if isinstance(item, tuple) else (item, item)
        e = self.items[index]
        rng = sample_rng(key)
        idx = reference_frame_indices(int(e["num_frames"]), self.n, self.rate, self.start, rng)
        path = self.root / e["video"] if not os.path.isabs(e["video"]) else Path(e["video"])
        frames = read_frames(path, indices=idx)
        if len(frames) < self.n:  # container frame count was optimistic: pad with the last frame
            frames = np.concatenate([frames, np.repeat(frames[-1:], self.n - len(frames), axis=0)])
        video = resize_center_crop(torch.from_numpy(frames).permute(0, 3, 1, 2), self.height, self.width)
        return {
            "pixel_values": video.float() / 127.5 - 1.0,
            "prompt": caption_for_frames(list(e.get("captions", [])), idx),
            "id": e["id"],
            "frame_indices": torch.tensor(idx),
        }


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


class ImagePoseDataset(Dataset):
    """FYP stage 1: image in [-1, 1] and its skeleton in [0, 1] (the pose encoder's input range)."""

    def __init__(self, data_dir: str | os.PathLike, *, width: int = 512, height: int = 512) -> None:
        _, entries, _ = load_manifest(data_dir, kind="image-pose")
        self.root, self.items, self.width, self.height = Path(data_dir), entries, width, height
        if not entries:
            raise InputError(f"no usable image-pose pair in {data_dir}", hint="prepare it with --kind image-pose")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item) -> dict[str, Any]:
        index = item[0] if isinstance(item, tuple) else item
        e = self.items[index]
        both = np.stack([_load_rgb(self.root / e["image"]), _load_rgb(self.root / e["skeleton"])])
        both = resize_center_crop(torch.from_numpy(both).permute(0, 3, 1, 2), self.height, self.width)
        return {
            "pixel_values": both[0].float() / 127.5 - 1.0,
            "pose": both[1].float() / 255.0,
            "prompt": e.get("caption", ""),
            "id": e["id"],
        }


def load_densepose(path: Path, height: int, width: int) -> torch.Tensor:
    """``(2, H, W)`` UV in [0, 1] -> bilinear-resized float32 ``(2, height, width)`` (reference d.4)."""
    uv = torch.from_numpy(np.load(path, allow_pickle=False).astype(np.float32))
    return F.interpolate(uv[None], size=(height, width), mode="bilinear", align_corners=False)[0]


def _ubc_frames(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per frame: a video entry of ``posevid prepare --kind ubc --densepose`` becomes its frames with a person."""
    from posevid.data.prepare_densepose import frame_entries

    return [f for e in entries for f in (frame_entries(e) if "frames_dir" in e else [e])]


class DreamPoseFrameDataset(Dataset):
    """UBC-style frames with DensePose for the three DreamPose recipes.

    Returns ``frame_i`` (conditioning image), ``frame_j`` (target) and ``pose_j`` (10 channels: the target's
    UV five times, as every reference training set does). ``mode``:

    * ``base`` (train.py): frame_i = the indexed frame, frame_j / pose_j a random frame of the same folder.
    * ``subject`` (finetune-unet.py): frame_j / pose_j random, with the reference crop augmentation (p=0.7).
    * ``vae`` (finetune-vae.py): only ``frame_j`` with the reference random crop.

    ``image_range`` "0_1" (reference datasets as committed) or "-1_1" (the deleted UBC set train.py imports);
    ``pose_range`` "uv" (raw UV, background 0) or "2uv-1" (inference convention, background -1).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike,
        *,
        mode: str = "base",
        height: int = 640,
        width: int = 512,
        image_range: str = "0_1",
        pose_range: str = "uv",
        augment: bool | None = None,
    ) -> None:
        _, entries, _ = load_manifest(data_dir, kind="ubc")
        entries = _ubc_frames(entries)
        if not entries:
            raise InputError(f"no usable frame in {data_dir}", hint="prepare a UBC-style folder with --kind ubc")
        self.root, self.items, self.mode, self.height, self.width = Path(data_dir), entries, mode, height, width
        self.image_range, self.pose_range = image_range, pose_range
        self.augment = (mode in ("subject", "vae")) if augment is None else augment
        self.groups: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            self.groups.setdefault(e.get("group", "."), []).append(i)

    def __len__(self) -> int:
        return len(self.items)

    def _image(self, e: dict[str, Any]) -> torch.Tensor:
        img = torch.from_numpy(_load_rgb(self.root / e["image"])).permute(2, 0, 1).float()[None]
        img = F.interpolate(img / 255.0, size=(self.height, self.width), mode="bilinear", align_corners=False)[0].clamp(0, 1)
        return img

    def _range(self, img01: torch.Tensor) -> torch.Tensor:
        return img01 * 2 - 1 if self.image_range == "-1_1" else img01

    def _crop(self, tensors: list[torch.Tensor], rng: np.random.Generator, max_off: int, min_h: int) -> list[torch.Tensor]:
        """Reference crop: top/left in [0, max_off), height in [min_h, H - top), width = height * W / H, resize back."""
        top, left = int(rng.integers(0, max_off)), int(rng.integers(0, max_off))
        h = int(rng.integers(min_h, max(min_h + 1, self.height - top)))
        w = int(h * self.width / self.height)
        out = []
        for t in tensors:
            c = t[:, top : top + h, left : left + w][None]
            out.append(F.interpolate(c, size=(self.height, self.width), mode="bilinear", align_corners=False)[0])
        return out

    def __getitem__(self, item) -> dict[str, Any]:
        index, key = item if isinstance(item, tuple) else (item, item)
        rng = sample_rng(key)
        e_i = self.items[index]
        group = self.groups[e_i.get("group", ".")]
        e_j = self.items[group[int(rng.integers(0, len(group)))]] if self.mode != "vae" else e_i
        frame_j = self._image(e_j)
        if self.mode == "vae":
            if self.augment:
                (frame_j,) = self._crop([frame_j], rng, max(1, int(0.1 * self.width)), self.height - int(0.1 * self.width))
            return {"frame_j": frame_j.clamp(0, 1), "id": e_i["id"]}
        uv = load_densepose(self.root / e_j["densepose"], self.height, self.width).clamp(0, 1)
        if self.augment and rng.random() < 0.7:
            frame_j, uv = self._crop([frame_j, uv], rng, 25, self.height - 25)
            uv = (uv * 255).round() / 255  # the reference's 8-bit PIL round trip of the pose
        pose = uv * 2 - 1 if self.pose_range == "2uv-1" else uv
        frame_i = self._image(e_i)
        return {"frame_i": self._range(frame_i), "frame_j": self._range(frame_j), "pose_j": pose.repeat(5, 1, 1), "id": e_i["id"]}


def collate_dicts(batch: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in batch[0]:
        vals = [b[k] for b in batch]
        out[k] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) and k != "frame_indices" else vals
    return out
