"""DreamPose image + pose -> video pipeline with dual classifier-free guidance.

One reference image and a DensePose sequence; every frame is generated independently (batch 1), sharing
the reference image and **one fixed start noise drawn once per video**, exactly like the reference
``test.py``. Value ranges follow the reference (spec §c), which is what the released weights expect:

* CLIP condition: the image through the CLIP processor -> ``last_hidden_state`` (B, 50, 768);
  unconditional: a black image (processor of zeros).
* VAE condition: **raw 0..255** pixels (not [-1, 1]) -> posterior *sample* x scaling factor; unconditional:
  a zero image with **H and W swapped** (1, 3, W, H) -> latent (1, 4, w, h) (the adapter still accepts it
  because max-pool + flatten give the same 1280 values per channel).
* init latents: the image in [-1, 1] -> posterior sample x scaling factor, then
  ``scheduler.add_noise(x0, fixed_noise, t0)`` (strength 1.0: the key frame still leaks in at t0).
* per step one UNet call, batch 3: ``[no image + no pose, image + pose, image + no pose]`` with context
  ``[emb_u, emb_c, emb_c]`` and pose channels ``[0, pose, 0]`` (0 = "no pose" in the normalised space);
  ``eps = e_u + s1 * (e_i - e_u) + s2 * (e_ip - e_i)``: **s1 = image guidance, s2 = pose guidance**.
* decode: ``round(255 * clamp(x / 2 + 0.5))``; the reference then min-max stretches every frame
  (:func:`minmax_stretch`), both are returned.

Every random draw can be injected (``fixed_noise``, ``vae_eps``) so golden tensors are reproduced;
otherwise they are drawn in the reference order (per frame: cond, uncond, init VAE noise; the fixed noise
right after frame 0's init draw), either from one ``generator`` passed in, or -- with ``seed`` -- from generators
keyed by (seed, frame number), so a frame's noise does not depend on which other frames are generated
(``--frames`` subsets reproduce the same pixels as the full run).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from posevid.errors import InputError
from posevid.pipelines.dreampose_defaults import DREAMPOSE_DEFAULTS
from posevid.pipelines.schedulers import DREAMPOSE_SCHEDULERS
from posevid.pipelines.schedulers import make_scheduler as _make_scheduler
from posevid.utils.progress import hide_inner_bar, progress_bar

SCHEDULERS = DREAMPOSE_SCHEDULERS


def make_scheduler(name: str, config: Mapping[str, Any]):
    """Scheduler ``name`` built from the release's (PNDM) config, as the reference's ``--sampler DDIM`` does
    (see :mod:`posevid.pipelines.schedulers`: DDIM with ``clip_sample=False``, DPM-Solver++ 2nd order)."""
    return _make_scheduler(name, config, SCHEDULERS, pin_defaults=True)


def frame_seed(seed: int, frame_number: int) -> int:
    """Seed of frame ``frame_number``'s noise generator: depends only on the run seed and the frame number."""
    return (int(seed) * 1_000_003 + 7_919 * (int(frame_number) + 1)) % (2**63 - 1)


def minmax_stretch(frame: np.ndarray) -> np.ndarray:
    """Reference test.py's per-frame stretch: ``a -= a.min(); (255 * a / a.max()).astype(uint8)``.

    Global min/max over all channels, truncation. A constant frame gives zeros (the reference divides by 0).
    """
    a = np.asarray(frame)
    a = a - a.min()
    peak = a.max()
    if peak == 0:
        return np.zeros_like(a, dtype=np.uint8)
    return (255 * (a / peak)).astype(np.uint8)


@dataclass
class DreamPoseOutput(BaseOutput):
    """``frames``: decoder output, uint8 (T, H, W, 3); ``frames_stretched``: the same after :func:`minmax_stretch`."""

    frames: np.ndarray
    frames_stretched: np.ndarray
    frame_numbers: list[int] = field(default_factory=list)
    latents: list[torch.Tensor] | None = None
    notes: list[str] = field(default_factory=list)


class DreamPosePipeline(DiffusionPipeline):
    """Image + DensePose -> frames (DreamPose). Components: vae, unet (14 ch), adapter, CLIP encoder + processor, scheduler."""

    model_cpu_offload_seq = "image_encoder->adapter->unet->vae"

    def __init__(self, vae, unet, adapter, image_encoder, image_processor, scheduler) -> None:
        super().__init__()
        self.register_modules(
            vae=vae, unet=unet, adapter=adapter, image_encoder=image_encoder, image_processor=image_processor, scheduler=scheduler
        )
        self.set_progress_bar_config(leave=False)

    # ---------------------------------------------------------------- loading / saving
    @classmethod
    def from_pretrained(
        cls,
        folder: str | os.PathLike,
        *,
        epoch: int | None = None,
        custom_vae: str | os.PathLike | None = None,
        clip: str | os.PathLike | None = None,
        scheduler: str | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> DreamPosePipeline:
        """Load a reference release folder (``unet_epoch_N.pth`` ...) or a posevid folder (see :mod:`posevid.models.dreampose`)."""
        from posevid.models.dreampose import load_dreampose_components

        comps = load_dreampose_components(folder, epoch=epoch, custom_vae=custom_vae, clip=clip, device=device, dtype=dtype)
        pipe = cls(comps.vae, comps.unet, comps.adapter, comps.image_encoder, comps.image_processor, comps.scheduler)
        pipe._loaded_from = dict(comps.source)  # what was loaded: a property of the model, not of a call
        if scheduler:
            pipe.set_scheduler(scheduler)
        return pipe

    def save_pretrained(self, save_directory: str | os.PathLike, **_: Any) -> Path:  # type: ignore[override]
        """posevid's safetensors folder (true ``in_channels``, adapter and CLIP included)."""
        from posevid.models.dreampose import save_dreampose

        return save_dreampose(self, save_directory)

    def set_scheduler(self, name: str) -> None:
        self.scheduler = make_scheduler(name, self.scheduler.config)

    # ---------------------------------------------------------------- sizes
    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_size(self) -> tuple[int, int]:
        h, w = self.adapter.config.latent_size
        return int(h), int(w)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) the adapter was built for: latent size x VAE scale factor (640x512 for released weights)."""
        h, w = self.latent_size
        return h * self.vae_scale_factor, w * self.vae_scale_factor

    @property
    def source(self) -> dict[str, Any]:
        """Which files were loaded (folder, epoch, custom VAE, CLIP), for sidecars."""
        return dict(getattr(self, "_loaded_from", {}))

    # ---------------------------------------------------------------- conditioning
    def prepare_image(self, image) -> tuple[Any, list[str]]:
        """Path / PIL / uint8 array -> PIL RGB at the model's size (bicubic); notes say what was converted."""
        from PIL import Image, UnidentifiedImageError

        notes: list[str] = []
        if isinstance(image, (str, os.PathLike)):
            path = Path(image)
            if not path.is_file():
                raise InputError(f"reference image not found: {path}", hint="pass --image PATH (a PNG or JPEG)")
            try:
                with Image.open(path) as im:
                    im.load()
                    image = im.copy()
            except (UnidentifiedImageError, OSError) as exc:
                raise InputError(f"cannot read reference image {path}: {str(exc).splitlines()[0][:120]}") from None
        elif isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        if image.mode != "RGB":
            notes.append(f"reference image mode {image.mode} converted to RGB" + (" (alpha dropped)" if "A" in image.mode else ""))
            image = image.convert("RGB")
        h, w = self.image_size
        if image.size != (w, h):
            notes.append(f"reference image resized from {image.size[0]}x{image.size[1]} to {w}x{h} (bicubic)")
            image = image.resize((w, h), Image.BICUBIC)
        return image, notes

    @torch.no_grad()
    def clip_embeddings(self, image) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(clip_cond, clip_uncond, pixel_values) ``last_hidden_state`` of the image and of a black image."""
        w, h = image.size
        enc = self.image_encoder
        px_c = self._clip_pixels(image)
        px_u = self._clip_pixels(np.zeros((w, h, 3), dtype=np.uint8))  # the reference's torch.zeros((W, H, 3))
        dev = enc.device
        out_c = enc(pixel_values=px_c.to(dev, enc.dtype)).last_hidden_state
        out_u = enc(pixel_values=px_u.to(dev, enc.dtype)).last_hidden_state
        return out_c, out_u, {"cond": px_c, "uncond": px_u}

    def _clip_pixels(self, image) -> torch.Tensor:
        return self.image_processor(images=image, return_tensors="pt")["pixel_values"]

    @torch.no_grad()
    def vae_posteriors(self, image) -> dict[str, Any]:
        """VAE posteriors of the three reference inputs (deterministic; sampled per frame)."""
        w, h = image.size
        vae = self.vae
        dev, dt = self._execution_device, vae.dtype
        arr = np.asarray(image, dtype=np.float32)
        raw = torch.from_numpy(arr.transpose(2, 0, 1).copy())[None]  # 0..255, (1, 3, H, W)
        init = raw / 255.0 * 2.0 - 1.0
        if h % 32 or w % 32:  # reference preprocess(): Lanczos to a multiple of 32 (a no-op at supported sizes)
            from PIL import Image

            im = image.resize((w - w % 32, h - h % 32), Image.LANCZOS)
            init = torch.from_numpy(np.asarray(im, dtype=np.float32).transpose(2, 0, 1).copy())[None] / 255.0 * 2.0 - 1.0
        zeros_swapped = torch.zeros(1, 3, w, h)  # reference quirk: H and W swapped
        return {
            "cond": vae.encode(raw.to(dev, dt)).latent_dist,
            "uncond": vae.encode(zeros_swapped.to(dev, dt)).latent_dist,
            "init": vae.encode(init.to(dev, dt)).latent_dist,
        }

    def _sample(self, dist, eps: torch.Tensor | None, generator) -> torch.Tensor:
        if eps is None:
            eps = torch.randn(dist.mean.shape, generator=generator, dtype=torch.float32)
        eps = eps.to(dist.mean.device, dist.mean.dtype)
        if tuple(eps.shape) != tuple(dist.mean.shape):
            raise InputError(f"injected VAE noise has shape {tuple(eps.shape)}, expected {tuple(dist.mean.shape)}")
        return (dist.mean + dist.std * eps) * self.vae.config.scaling_factor

    @torch.no_grad()
    def encode_condition(self, clip_c, clip_u, posteriors, *, eps_cond=None, eps_uncond=None, generator=None):
        """(emb_uncond, emb_cond), each (1, 50, 768): adapter(CLIP tokens, sampled VAE latent)."""
        vae_c = self._sample(posteriors["cond"], eps_cond, generator)
        vae_u = self._sample(posteriors["uncond"], eps_uncond, generator)
        a = self.adapter
        emb_c = a(clip_c.to(a.device, a.dtype), vae_c.to(a.dtype))
        emb_u = a(clip_u.to(a.device, a.dtype), vae_u.to(a.dtype))
        return emb_u, emb_c

    @torch.no_grad()
    def denoise(
        self,
        latents: torch.Tensor,
        pose: torch.Tensor,
        emb_u: torch.Tensor,
        emb_c: torch.Tensor,
        *,
        s1: float,
        s2: float,
        step_callback: Callable[[int, Any, torch.Tensor, torch.Tensor], None] | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Run the scheduler's timesteps (already set) from ``latents`` with dual guidance; returns final latents."""
        unet = self.unet
        dt = unet.dtype
        z = latents.to(dt)
        pose_lat = F.interpolate(pose.to(self._execution_device, dt), size=tuple(z.shape[-2:]))  # nearest, as the reference
        zero = torch.zeros_like(pose_lat)
        pose_in = torch.cat([zero, pose_lat, zero])  # [no pose, pose, no pose]
        context = torch.cat([emb_u, emb_c, emb_c]).to(dt)  # [no image, image, image]
        # stochastic schedulers (euler-a, ddpm) draw noise in step(): from our generator, so --seed decides it
        step_kwargs = {"generator": generator} if "generator" in inspect.signature(self.scheduler.step).parameters else {}
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            zin = self.scheduler.scale_model_input(torch.cat([z] * 3), t)
            noise = unet(torch.cat([zin, pose_in], dim=1), t, encoder_hidden_states=context).sample
            e_u, e_ip, e_i = noise.chunk(3)
            eps = e_u + s1 * (e_i - e_u) + s2 * (e_ip - e_i)
            if step_callback is not None:
                step_callback(i, t, noise, z)
            z = self.scheduler.step(eps, t, z, **step_kwargs).prev_sample
        return z

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(float HWC in [0, 1], uint8 HWC) of a (1, 4, h, w) latent, as ``decode_latents`` + ``numpy_to_pil``."""
        x = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample
        x = (x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
        return x, (x * 255).round().astype(np.uint8)

    # ---------------------------------------------------------------- main call
    @torch.no_grad()
    def __call__(
        self,
        image,
        poses: Iterable[torch.Tensor] | Any,
        *,
        frames: Sequence[int] | None = None,
        s1: float = DREAMPOSE_DEFAULTS.s1,
        s2: float = DREAMPOSE_DEFAULTS.s2,
        num_inference_steps: int = DREAMPOSE_DEFAULTS.num_inference_steps,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        frame_batch_size: int = DREAMPOSE_DEFAULTS.frame_batch_size,
        fixed_noise: torch.Tensor | None = None,
        vae_eps: Sequence[Mapping[str, torch.Tensor]] | None = None,
        return_latents: bool = False,
        return_frames: bool = True,
        frame_callback: Callable[[int, int, np.ndarray, np.ndarray], None] | None = None,
        show_progress: bool = True,
    ) -> DreamPoseOutput:
        """Generate one frame per pose, ``frame_batch_size`` frames per UNet call.

        ``poses``: a :class:`~posevid.data.dreampose_poses.DensePoseSequence` (with ``frames``: which frame numbers) or
        an iterable of ``(1, 10, H, W)`` pose tensors (already windowed and normalised). ``fixed_noise``:
        (1, 4, h, w) start noise; ``vae_eps[i]``: ``{"cond", "uncond", "init"}`` posterior noise for frame i.
        Without injection the draws come from ``generator`` in sequence or, if none is given, from per-frame
        generators keyed by ``(seed, frame number)`` (the start noise from ``seed`` itself).

        Frames are independent (no temporal layers), so ``frame_batch_size`` K stacks K frames into one UNet call
        of ``3K`` rows. Conditioning draws stay per frame and in the same order, so with the deterministic
        schedulers (PNDM, DDIM with eta 0, DPM-Solver++, UniPC) a frame's pixels do not depend on K; ancestral
        ones (Euler-a, DDPM) draw step noise for the whole batch when K > 1. K = 1 is the reference's loop.

        ``frame_callback(i, frame_number, raw_uint8, stretched_uint8)`` is called as each frame is ready (streaming
        writers); with ``return_frames=False`` frames are not kept in memory (long videos) and the output arrays are empty.
        """
        if not isinstance(frame_batch_size, int) or isinstance(frame_batch_size, bool) or frame_batch_size < 1:
            raise InputError(f"frame batch size must be an integer >= 1, got {frame_batch_size!r}")
        keyed = generator is None
        base_seed = 0 if seed is None else int(seed)
        pil, notes = self.prepare_image(image)
        h, w = self.image_size
        if hasattr(poses, "tensor") and hasattr(poses, "frames"):
            seq = poses
            numbers = list(frames) if frames is not None else seq.frames
            pose_iter: Iterable[torch.Tensor] = (seq.tensor(n, (h, w)) for n in numbers)
            total: int | None = len(numbers)
        else:
            pose_iter = poses
            numbers = list(frames) if frames is not None else []
            total = len(poses) if hasattr(poses, "__len__") else None

        clip_c, clip_u, _ = self.clip_embeddings(pil)
        posteriors = self.vae_posteriors(pil)
        # per-frame steps, nested inside 'frames' (drawn on a terminal only)
        self.set_progress_bar_config(leave=False, disable=hide_inner_bar(show_progress) or frame_batch_size > 1)
        pose_channels = self.unet.config.in_channels - self.unet.config.out_channels
        device = self._execution_device
        raw, stretched, latents_out, done = [], [], [], []
        pending: list[tuple[int, int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator | None]] = []

        def flush() -> None:
            if not pending:
                return
            self.scheduler.set_timesteps(num_inference_steps, device=device)  # also resets multistep state
            z = torch.cat([p[2] for p in pending])
            pose = torch.cat([p[3] for p in pending])
            emb_u, emb_c = torch.cat([p[4] for p in pending]), torch.cat([p[5] for p in pending])
            step_generator = pending[0][6] if len(pending) == 1 else None  # one frame: its own generator drives step noise
            z = self.denoise(z, pose, emb_u, emb_c, s1=s1, s2=s2, generator=step_generator)
            for k, (i, number, *_rest) in enumerate(pending):
                _, frame = self.decode(z[k : k + 1])
                raw_i, stretched_i = frame[0], minmax_stretch(frame[0])
                if return_frames:
                    raw.append(raw_i)
                    stretched.append(stretched_i)
                if return_latents:
                    latents_out.append(z[k : k + 1].detach().cpu())
                if frame_callback is not None:
                    frame_callback(i, number, raw_i, stretched_i)
                done.append(number)
            pending.clear()

        for i, pose in enumerate(progress_bar(pose_iter, total=total, desc="frames", enabled=show_progress, leave=True)):
            if pose.ndim == 3:
                pose = pose[None]
            if tuple(pose.shape[-2:]) != (h, w) or pose.shape[1] != pose_channels:
                raise InputError(f"pose tensor of shape {tuple(pose.shape)} does not fit: expected (1, {pose_channels}, {h}, {w})")
            eps = vae_eps[i] if vae_eps is not None else {}
            number = numbers[i] if i < len(numbers) else i
            if keyed:
                generator = torch.Generator().manual_seed(frame_seed(base_seed, number))
            emb_u, emb_c = self.encode_condition(
                clip_c, clip_u, posteriors, eps_cond=eps.get("cond"), eps_uncond=eps.get("uncond"), generator=generator
            )
            x0 = self._sample(posteriors["init"], eps.get("init"), generator)
            if fixed_noise is None:  # drawn once per video, right after frame 0's init draw (reference order)
                fixed_noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(base_seed) if keyed else generator)
            noise = fixed_noise.reshape(x0.shape).to(x0.device, emb_c.dtype)
            self.scheduler.set_timesteps(num_inference_steps, device=device)
            z0 = self.scheduler.add_noise(x0.to(noise.dtype), noise, self.scheduler.timesteps[:1])
            pending.append((i, number, z0, pose, emb_u, emb_c, generator))
            if len(pending) == frame_batch_size:
                flush()
        flush()
        if not done:
            raise InputError("no pose frames to generate")
        empty = np.zeros((0, h, w, 3), np.uint8)
        return DreamPoseOutput(
            frames=np.stack(raw) if raw else empty,
            frames_stretched=np.stack(stretched) if stretched else empty,
            frame_numbers=done,
            latents=latents_out if return_latents else None,
            notes=notes,
        )


__all__ = ["SCHEDULERS", "DreamPoseOutput", "DreamPosePipeline", "frame_seed", "make_scheduler", "minmax_stretch"]
