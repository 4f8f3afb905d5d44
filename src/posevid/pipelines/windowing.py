"""Videos of any length with Follow-Your-Pose: overlapping windows fused at every denoising step.

The released model was trained on 8-frame clips and the reference samples at most 24-32 frames (memory
grows with the clip, and temporal attention is all-pairs over frames). Peers that handle long videos
(AnimateAnyone, MimicMotion, UniAnimate ports) cut the clip into overlapping windows and fuse the windows'
noise predictions at every step. We do the same, with three choices made for this model:

* **window 24, overlap 8 by default.** 24 frames is the longest clip the reference ran in practice (16 GB
  T4: ~25; its training validation used 24), so temporal attention never sees more frames than it did in
  the authors' own samples; overlap 8 (a third) is what the window-fusion papers use and keeps every frame
  covered by two windows over most of the video at 1.5x the cost of non-overlapping windows.
* **triangular fusion weights** (``min(j + 1, L - j)`` inside a window of length L): a window's edge frames
  see the least temporal context (conv_temporal zero-pads, the first frame has no previous frame), so they
  get the smallest weight and the neighbouring window, for which they are central, dominates. Seams blend
  linearly. ``uniform`` is available and averages instead.
* **frame 0 of the whole video stays the sparse-causal anchor of every window** (see
  :mod:`posevid.models.attention_fast`): the window holding frame 0 runs first in each step and records
  frame 0's keys/values at every ``attn1`` layer; later windows attend to them. Temporal attention,
  conv_temporal and the clip-wide GroupNorm see only the window. When one window covers the clip the code
  takes the plain path, so outputs equal the non-windowed pipeline exactly.

For constant memory, :func:`generate_long` also streams the skeleton video (frames prepared once into a
temporary float32 file and read back window by window, pose features computed per window) and decodes the
latents in chunks straight into the output mp4. Only the latents (``4 x h/8 x w/8`` floats per frame, e.g.
64 KB at 512x512) grow with the length.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posevid.errors import InputError

DEFAULT_WINDOW = 24
DEFAULT_OVERLAP = 8
WEIGHTINGS = ("triangular", "uniform")
ANCHORS = ("video", "window")

FeatureSource = Sequence[torch.Tensor] | Callable[[int, int], Sequence[torch.Tensor]]


# ----------------------------------------------------------------------------------------------- planning
def check_window_args(window: int | None, overlap: int, weighting: str = "triangular", anchor: str = "video") -> None:
    """One-line InputErrors for impossible window settings (checked before any model time is spent)."""
    if window is not None and (not isinstance(window, int) or window < 1):
        raise InputError(f"window size must be an integer >= 1, got {window!r}", hint=f"e.g. --window {DEFAULT_WINDOW}")
    if not isinstance(overlap, int) or overlap < 0:
        raise InputError(f"window overlap must be an integer >= 0, got {overlap!r}")
    if window is not None and overlap >= window:
        raise InputError(f"window overlap {overlap} must be smaller than the window size {window}", hint="e.g. --window 24 --overlap 8")
    if weighting not in WEIGHTINGS:
        raise InputError(f"unknown window weighting {weighting!r}", hint=f"choose one of {', '.join(WEIGHTINGS)}")
    if anchor not in ANCHORS:
        raise InputError(f"unknown window anchor {anchor!r}", hint=f"choose one of {', '.join(ANCHORS)}")


def plan_windows(num_frames: int, window: int | None, overlap: int = DEFAULT_OVERLAP) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(num_frames)``; every window has ``window`` frames.

    Windows advance by ``window - overlap``; the last one is aligned to the end of the clip (so it may
    overlap its neighbour by more than ``overlap``) rather than being shorter than the model's clip length.
    The window holding frame 0 comes first. ``window`` None or >= ``num_frames``: one window.
    """
    check_window_args(window, overlap)
    if window is None or window >= num_frames:
        return [(0, num_frames)]
    step = window - overlap
    starts = list(range(0, num_frames - window, step)) + [num_frames - window]
    return [(s, s + window) for s in dict.fromkeys(starts)]


def fusion_weights(length: int, weighting: str = "triangular") -> torch.Tensor:
    """Per-frame weights of one window (all > 0): triangular ``min(j + 1, L - j)`` or uniform ones."""
    if weighting == "uniform":
        return torch.ones(length)
    j = torch.arange(length, dtype=torch.float32)
    return torch.minimum(j + 1, length - j)


# ----------------------------------------------------------------------------------------------- noise
def _rows(x: torch.Tensor, k: int, per: int) -> torch.Tensor:
    return x if x.shape[0] == 1 else x[k * per : (k + 1) * per]


def predict_noise(
    unet,
    model_in: torch.Tensor,
    t: torch.Tensor | int,
    text: torch.Tensor,
    pose_features: FeatureSource,
    *,
    branches: int = 1,
    split_cfg: bool = False,
    windows: Sequence[tuple[int, int]] | None = None,
    weighting: str = "triangular",
    anchor: str = "video",
) -> torch.Tensor:
    """The UNet's noise prediction for ``model_in`` (``branches * B`` rows, e.g. [uncond; cond]), float32.

    ``split_cfg`` runs the CFG branches as separate UNet calls (half the activation memory, same result up
    to batch-size rounding). ``windows`` (from :func:`plan_windows`) runs each window separately and fuses
    the predictions with :func:`fusion_weights`. ``pose_features``: the full per-frame features (sliced per
    window along the frame axis), or a callable ``(start, stop) -> features`` for streamed pose.
    """
    frames = model_in.shape[2]
    windows = list(windows) if windows else [(0, frames)]
    per = model_in.shape[0] // branches

    def features_for(start: int, stop: int) -> list[torch.Tensor]:
        if callable(pose_features):
            return list(pose_features(start, stop))
        if (start, stop) == (0, frames):
            return list(pose_features)
        return [feat[:, :, start:stop] for feat in pose_features]

    def run(x: torch.Tensor, feats: list[torch.Tensor], state) -> torch.Tensor:
        if not split_cfg or branches == 1:
            if state is not None:
                state.branch = "all"
            return unet(x, t, encoder_hidden_states=text, pose_features=feats, inject_pose=True).sample.float()
        outs = []
        for k in range(branches):
            if state is not None:
                state.branch = f"branch{k}"
            rows_feats = [_rows(feat, k, per) for feat in feats]
            outs.append(
                unet(x[k * per : (k + 1) * per], t, encoder_hidden_states=_rows(text, k, per), pose_features=rows_feats).sample.float()
            )
        return torch.cat(outs)

    if windows == [(0, frames)]:  # the plain path, exactly
        return run(model_in, features_for(0, frames), None)

    from posevid.models.attention_fast import configure_attention

    state = configure_attention(unet).anchor if anchor == "video" else None
    acc = torch.zeros(model_in.shape, dtype=torch.float32, device=model_in.device)
    total = torch.zeros(frames, dtype=torch.float32, device=model_in.device)
    try:
        for start, stop in windows:
            if state is not None:
                state.mode = "record" if start == 0 else "use"
            eps = run(model_in[:, :, start:stop], features_for(start, stop), state)
            w = fusion_weights(stop - start, weighting).to(model_in.device)
            acc[:, :, start:stop] += eps * w.view(1, 1, -1, 1, 1)
            total[start:stop] += w
    finally:
        if state is not None:
            state.mode = None
            state.clear()
    return acc / total.view(1, 1, -1, 1, 1)


# ----------------------------------------------------------------------------------------------- pose
class PoseFrames:
    """Prepared pose frames ``(1, n, 3, H, W)`` in [0, 1], served window by window."""

    num_frames: int

    def window(self, start: int, stop: int) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class TensorPoseFrames(PoseFrames):
    def __init__(self, pose: torch.Tensor) -> None:
        self.pose = pose
        self.num_frames = pose.shape[1]

    def window(self, start: int, stop: int) -> torch.Tensor:
        return self.pose[:, start:stop]


class FilePoseFrames(PoseFrames):
    """Pose frames prepared one at a time from the skeleton video into a temporary float32 file.

    Reading a window back is an ``np.fromfile`` of contiguous bytes (no memory map, so the resident set
    stays one window), and the pixels are exactly those of :func:`posevid.pipelines.fyp_pose_input.prepare_pose`.
    """

    def __init__(self, path: str | os.PathLike, *, video_length: int, stride: int, height: int, width: int, antialias: bool = False):
        from posevid.pipelines.fyp_pose_input import _prepare_frames, frames_needed, too_short_message
        from posevid.video import iter_frames, probe_video

        info = probe_video(path)
        if info.num_frames < frames_needed(video_length, stride):
            raise InputError(too_short_message(str(path), info.num_frames, video_length, stride))
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


# ----------------------------------------------------------------------------------------------- decode
def decode_frames(pipe, latents: torch.Tensor, chunk: int = 4):
    """Yield uint8 ``(H, W, 3)`` frames of a ``(1, 4, f, h, w)`` latent clip, decoding ``chunk`` frames at a time.

    Pixels equal ``posevid generate``'s: VAE decode, ``clamp(x / 2 + 0.5)``, truncating ``x * 255``.
    """
    vae_dtype = next(pipe.vae.parameters()).dtype
    device = pipe._execution_device
    scale = pipe.vae.config.scaling_factor
    frames = latents.shape[2]
    for start in range(0, frames, max(1, chunk)):
        with torch.no_grad():  # a generator: the caller's no_grad does not reach here between yields
            z = (latents[0, :, start : start + chunk].transpose(0, 1) / scale).to(device, vae_dtype)
            x = (pipe.vae.decode(z).sample.float() / 2 + 0.5).clamp(0, 1)
        for img in x.permute(0, 2, 3, 1).cpu().numpy():
            yield (img * 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------- long videos
@torch.no_grad()
def sample_long(
    pipe,
    prompt: str,
    pose: Any,
    *,
    video_length: int,
    frame_stride: int = 5,
    height: int = 512,
    width: int = 512,
    num_inference_steps: int = 50,
    guidance_scale: float = 12.5,
    negative_prompt: str | None = None,
    seed: int | None = None,
    latents: torch.Tensor | None = None,
    scheduler: str | Any | None = None,
    window: int | None = DEFAULT_WINDOW,
    overlap: int = DEFAULT_OVERLAP,
    weighting: str = "triangular",
    anchor: str = "video",
    split_cfg: bool = False,
    pose_antialias: bool = False,
    eta: float = 0.0,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Denoised latents ``(1, 4, video_length, h, w)`` of one video, pose streamed window by window.

    Same noise, text, pose pixels and scheduler as :class:`FollowYourPosePipeline` for the same seed or
    latents, so with one window (``window >= video_length``) the result is the pipeline's. Returns the
    latents and ``{"windows": [...], "<stage>_seconds": ...}``.
    """
    from posevid.pipelines.followyourpose import _initial_noise, _step_kwargs
    from posevid.pipelines.fyp_pose_input import prepare_pose

    if not isinstance(prompt, str):
        raise InputError("long-video sampling takes a single prompt string")
    if not isinstance(video_length, int) or video_length < 1:
        raise InputError(f"video_length must be an integer >= 1, got {video_length!r}")
    if height <= 0 or width <= 0 or height % 64 or width % 64:
        raise InputError(f"height and width must be positive multiples of 64, got {height}x{width}")
    check_window_args(window, overlap, weighting, anchor)
    windows = plan_windows(video_length, window, overlap)
    info: dict[str, Any] = {"windows": windows}

    t0 = time.perf_counter()
    if isinstance(pose, (str, os.PathLike)):
        frames: PoseFrames = FilePoseFrames(
            pose, video_length=video_length, stride=frame_stride, height=height, width=width, antialias=pose_antialias
        )
    else:
        frames = TensorPoseFrames(
            prepare_pose(pose, video_length=video_length, stride=frame_stride, height=height, width=width, antialias=pose_antialias)
        )
    try:
        info["pose_seconds"] = time.perf_counter() - t0
        device = pipe._execution_device
        unet_dtype = pipe.unet.dtype
        t0 = time.perf_counter()
        do_cfg = guidance_scale > 1.0
        branches = 2 if do_cfg else 1
        text = pipe._encode_text([prompt], device)
        if do_cfg:
            text = torch.cat([pipe._encode_text([negative_prompt or ""], device), text])
        text = text.to(device, unet_dtype)
        info["text_seconds"] = time.perf_counter() - t0

        cache: dict[tuple[int, int], list[torch.Tensor]] = {}

        def features(start: int, stop: int) -> list[torch.Tensor]:
            if (start, stop) not in cache:  # one window's features: reused by both CFG branches and, with one window, every step
                cache.clear()
                feats = pipe.unet.encode_pose(frames.window(start, stop).to(device, unet_dtype))
                cache[(start, stop)] = [f.expand(branches, *f.shape[1:]) for f in feats]
            return cache[(start, stop)]

        sched = pipe._make_scheduler(scheduler)
        h8, w8 = height // pipe.vae_scale_factor, width // pipe.vae_scale_factor
        shape = (1, pipe.unet.config.in_channels, video_length, h8, w8)
        if latents is None:
            latents = _initial_noise(shape, None, seed)
        elif tuple(latents.shape) != shape:
            raise InputError(f"latents have shape {tuple(latents.shape)}, expected {shape}")
        latents = latents.to(device, torch.float32) * sched.init_noise_sigma
        sched.set_timesteps(num_inference_steps, device=device)
        step_kwargs = _step_kwargs(sched, eta=eta, generator=None)
        t0 = time.perf_counter()
        with pipe.progress_bar(total=len(sched.timesteps)) as bar:
            for t in sched.timesteps:
                model_in = torch.cat([latents] * branches) if do_cfg else latents
                model_in = sched.scale_model_input(model_in, t).to(unet_dtype)
                eps = predict_noise(
                    pipe.unet, model_in, t, text, features,
                    branches=branches, split_cfg=split_cfg, windows=windows, weighting=weighting, anchor=anchor,
                )  # fmt: skip
                if do_cfg:
                    eps_uncond, eps_cond = eps.chunk(2)
                    eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
                latents = sched.step(eps, t, latents, **step_kwargs).prev_sample
                bar.update()
        cache.clear()
        info["denoise_seconds"] = time.perf_counter() - t0
    finally:
        frames.close()
    return latents, info


@torch.no_grad()
def generate_long(
    pipe,
    prompt: str,
    pose: Any,
    output: str | os.PathLike,
    *,
    video_length: int,
    decode_chunk_size: int = 4,
    fps: float = 8.0,
    **kwargs: Any,
) -> dict[str, Any]:
    """One video of ``video_length`` frames written to ``output`` (mp4) with memory independent of the length.

    :func:`sample_long` (``kwargs``: its options) then :func:`decode_frames` streamed into a
    :class:`posevid.video.VideoWriter`: the mp4 appears only if everything succeeded. Returns the window plan
    and per-stage seconds.
    """
    from posevid.video import VideoWriter

    latents, info = sample_long(pipe, prompt, pose, video_length=video_length, **kwargs)
    t0 = time.perf_counter()
    with VideoWriter(output, fps=fps) as writer:  # atomic: the mp4 appears only when complete
        for frame in decode_frames(pipe, latents, decode_chunk_size):
            writer.write(frame)
    info["decode_seconds"] = time.perf_counter() - t0
    pipe.maybe_free_model_hooks()
    out = {"output": str(output), "frames": video_length}
    out.update({k: round(v, 3) if isinstance(v, float) else v for k, v in info.items()})
    return out


__all__ = [
    "ANCHORS",
    "DEFAULT_OVERLAP",
    "DEFAULT_WINDOW",
    "WEIGHTINGS",
    "FilePoseFrames",
    "TensorPoseFrames",
    "check_window_args",
    "decode_frames",
    "fusion_weights",
    "generate_long",
    "plan_windows",
    "predict_noise",
    "sample_long",
]
