"""DreamPose with several frames per UNet call: the same frames as :class:`DreamPosePipeline`, faster on GPUs.

DreamPose generates every frame independently (no temporal layers), so frames can share a UNet batch:
``batch_size`` frames give one UNet call of ``3 * batch_size`` rows per step (uncond / image+pose / image)
instead of ``batch_size`` calls of 3 rows. Conditioning draws stay per frame and in the pipeline's order
(per-frame generators keyed by ``(seed, frame number)``, the start noise drawn once per video), so a frame's
pixels do not depend on the batch size. Frames are handed to ``frame_callback`` as soon as their batch is
decoded and are not kept unless ``return_frames``: memory grows with ``batch_size``, not with the video.

Deterministic schedulers (PNDM/PLMS, the reference's; DDIM with eta 0; DPM-Solver++; UniPC) give the
per-frame results; ancestral ones (Euler-a, DDPM) draw their step noise for the whole batch, so their
frames depend on the batch composition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from posevid.errors import InputError


@torch.no_grad()
def generate_batched(
    pipe,
    image,
    poses: Iterable[torch.Tensor] | Any,
    *,
    batch_size: int = 4,
    frames: Sequence[int] | None = None,
    s1: float = 8.0,
    s2: float = 3.0,
    num_inference_steps: int = 100,
    seed: int | None = None,
    fixed_noise: torch.Tensor | None = None,
    vae_eps: Sequence[Mapping[str, torch.Tensor]] | None = None,
    return_frames: bool = True,
    return_latents: bool = False,
    frame_callback: Callable[[int, int, np.ndarray, np.ndarray], None] | None = None,
    show_progress: bool = True,
):
    """Like ``DreamPosePipeline.__call__`` (keyed per-frame noise), ``batch_size`` frames per UNet call.

    Returns the pipeline's ``DreamPoseOutput``.
    """
    from tqdm.auto import tqdm

    from posevid.pipelines.dreampose import DreamPoseOutput, frame_seed, minmax_stretch

    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"frame batch size must be an integer >= 1, got {batch_size!r}")
    base_seed = 0 if seed is None else int(seed)
    pil, notes = pipe.prepare_image(image)
    pipe.notes = notes
    h, w = pipe.image_size
    if hasattr(poses, "tensor") and hasattr(poses, "frames"):
        numbers = list(frames) if frames is not None else poses.frames
        pose_iter: Iterable[torch.Tensor] = (poses.tensor(n, (h, w)) for n in numbers)
        total: int | None = len(numbers)
    else:
        pose_iter, numbers = poses, list(frames) if frames is not None else []
        total = len(poses) if hasattr(poses, "__len__") else None

    clip_c, clip_u, _ = pipe.clip_embeddings(pil)
    posteriors = pipe.vae_posteriors(pil)
    pipe.set_progress_bar_config(leave=False, disable=True)
    pose_channels = pipe.unet.config.in_channels - pipe.unet.config.out_channels
    raw, stretched, latents_out, numbers_done = [], [], [], []
    pending: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def flush() -> None:
        if not pending:
            return
        pipe.scheduler.set_timesteps(num_inference_steps, device=pipe._device)  # also resets multistep state
        z = torch.cat([p[1] for p in pending])
        pose = torch.cat([p[2] for p in pending])
        emb_u = torch.cat([p[3] for p in pending])
        emb_c = torch.cat([p[4] for p in pending])
        z = pipe.denoise(z, pose, emb_u, emb_c, s1=s1, s2=s2, generator=None)
        for k, (number, *_rest) in enumerate(pending):
            _, frame = pipe.decode(z[k : k + 1])
            raw_i, stretched_i = frame[0], minmax_stretch(frame[0])
            if return_frames:
                raw.append(raw_i)
                stretched.append(stretched_i)
            if return_latents:
                latents_out.append(z[k : k + 1].detach().cpu())
            if frame_callback is not None:
                frame_callback(len(numbers_done), number, raw_i, stretched_i)
            numbers_done.append(number)
        pending.clear()

    for i, pose in enumerate(tqdm(pose_iter, total=total, desc="frames", disable=not show_progress)):
        if pose.ndim == 3:
            pose = pose[None]
        if tuple(pose.shape[-2:]) != (h, w) or pose.shape[1] != pose_channels:
            raise InputError(f"pose tensor of shape {tuple(pose.shape)} does not fit: expected (1, {pose_channels}, {h}, {w})")
        eps = vae_eps[i] if vae_eps is not None else {}
        number = numbers[i] if i < len(numbers) else i
        generator = torch.Generator().manual_seed(frame_seed(base_seed, number))
        emb_u, emb_c = pipe.encode_condition(
            clip_c, clip_u, posteriors, eps_cond=eps.get("cond"), eps_uncond=eps.get("uncond"), generator=generator
        )
        x0 = pipe._sample(posteriors["init"], eps.get("init"), generator)
        if fixed_noise is None:  # once per video, after frame 0's init draw (the pipeline's order)
            fixed_noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(base_seed))
        noise = fixed_noise.reshape(x0.shape).to(x0.device, emb_c.dtype)
        pipe.scheduler.set_timesteps(num_inference_steps, device=pipe._device)
        z0 = pipe.scheduler.add_noise(x0.to(noise.dtype), noise, pipe.scheduler.timesteps[:1])
        pending.append((number, z0, pose, emb_u, emb_c))
        if len(pending) == batch_size:
            flush()
    flush()
    if not numbers_done:
        raise InputError("no pose frames to generate")
    empty = np.zeros((0, h, w, 3), np.uint8)
    return DreamPoseOutput(
        frames=np.stack(raw) if raw else empty,
        frames_stretched=np.stack(stretched) if stretched else empty,
        frame_numbers=numbers_done,
        latents=latents_out if return_latents else None,
    )


__all__ = ["generate_batched"]
