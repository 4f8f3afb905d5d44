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
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from posevid.errors import InputError
from posevid.pipelines.fyp_checks import ANCHORS, DEFAULT_OVERLAP, DEFAULT_WINDOW, WEIGHTINGS, check_window_args

FeatureSource = Sequence[torch.Tensor] | Callable[[int, int], Sequence[torch.Tensor]]


# ----------------------------------------------------------------------------------------------- planning
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


# ----------------------------------------------------------------------------------------------- decode
def decode_frames(pipe, latents: torch.Tensor, chunk: int = 4):
    """Yield uint8 ``(H, W, 3)`` frames of a ``(1, 4, f, h, w)`` latent clip, decoding ``chunk`` frames at a time.

    Pixels equal ``posevid generate``'s: the pipeline's one decode (:meth:`FollowYourPosePipeline.iter_decoded`),
    then the truncating ``x * 255``.
    """
    for x in pipe.iter_decoded(latents, chunk):
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

    The pipeline's own call with ``stream_pose=True`` and ``output_type="latent"`` (the same loop), so with
    one window the result is the plain path's. Returns the latents and ``{"windows": [...], "denoise_seconds": ...}``.
    """
    if not isinstance(prompt, str):
        raise InputError("long-video sampling takes a single prompt string")
    if not isinstance(video_length, int) or video_length < 1:
        raise InputError(f"video_length must be an integer >= 1, got {video_length!r}")
    check_window_args(window, overlap, weighting, anchor)
    info: dict[str, Any] = {"windows": plan_windows(video_length, window, overlap)}
    t0 = time.perf_counter()
    out = pipe(
        prompt, pose, video_length=video_length, frame_stride=frame_stride, height=height, width=width,
        num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, negative_prompt=negative_prompt, seed=seed,
        latents=latents, scheduler=scheduler, eta=eta, split_cfg=split_cfg, pose_antialias=pose_antialias, window_size=window,
        window_overlap=overlap, window_weighting=weighting, window_anchor=anchor, stream_pose=True, output_type="latent",
    )  # fmt: skip
    info["denoise_seconds"] = time.perf_counter() - t0
    return out.videos, info


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
    "check_window_args",
    "decode_frames",
    "fusion_weights",
    "generate_long",
    "plan_windows",
    "predict_noise",
    "sample_long",
]
