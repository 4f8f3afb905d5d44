"""Follow-Your-Pose text + pose -> video pipeline on current diffusers.

With the reference settings (DDIM, stride 5, 512x512, the same latents) the numbers equal the official
``FollowYourPosePipeline`` (checked against golden tensors from the reference code). What is different
is what used to crash or was hard-wired there:

* any size that is a multiple of 64 (the pose is resized to cover, then center-cropped);
* guidance <= 1 runs a single (conditional) branch instead of crashing;
* lists of prompts and ``num_videos_per_prompt`` work; every video gets the same pose;
* text embeddings and pose features are computed once per call, not once per step;
* noise comes from a CPU generator by default, so a seed gives the same video on CPU and GPU;
* ``vae.config.scaling_factor`` instead of a hard-coded 0.18215;
* a too-short skeleton video is a one-line error that says what would fit.

Reference quirk kept on purpose: the unconditional branch of classifier-free guidance sees the **same
pose** as the conditional one (the pose is not dropped), because the released weights were used so.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.configuration_utils import FrozenDict
from diffusers.utils import BaseOutput

from posevid.errors import InputError

if TYPE_CHECKING:
    from posevid.models.loading import FollowYourPoseLayout
from posevid.pipelines.fyp_pose_input import prepare_pose
from posevid.pipelines.windowing import check_window_args, plan_windows, predict_noise

SCHEDULERS = ("ddim", "dpm++", "unipc", "euler", "pndm")
OUTPUT_TYPES = ("np", "pt", "latent", "uint8")


def scheduler_class(name: str):
    """Scheduler class for a short name (``ddim`` is the reference's)."""
    import diffusers

    classes = {
        "ddim": diffusers.DDIMScheduler,
        "dpm++": diffusers.DPMSolverMultistepScheduler,
        "dpmpp": diffusers.DPMSolverMultistepScheduler,
        "unipc": diffusers.UniPCMultistepScheduler,
        "euler": diffusers.EulerDiscreteScheduler,
        "pndm": diffusers.PNDMScheduler,
    }
    key = name.lower().strip()
    if key not in classes:
        raise InputError(f"unknown scheduler {name!r}", hint=f"choose one of {', '.join(SCHEDULERS)}")
    return classes[key]


@dataclass
class FollowYourPoseOutput(BaseOutput):
    """``videos``: ``np`` float (b, f, H, W, 3) in [0, 1]; ``pt`` float (b, f, 3, H, W); ``uint8`` (b, f, H, W, 3);
    ``latent`` (b, 4, f, h, w). ``pose``: the (b or 1, f, 3, H, W) pose tensor the UNet saw, in [0, 1]."""

    videos: Any
    pose: torch.Tensor | None = None


class FollowYourPosePipeline(DiffusionPipeline):
    """Text + skeleton video -> video with the Follow-Your-Pose video UNet.

    Components: ``vae`` (AutoencoderKL), ``text_encoder`` (CLIPTextModel), ``tokenizer`` (CLIPTokenizer),
    ``unet`` (:class:`posevid.models.fyp_unet.FollowYourPoseUNet`, pose encoder inside) and ``scheduler``.
    Build it from the official release folder with :meth:`from_release`; ``save_pretrained`` /
    ``from_pretrained`` use posevid's folder format (``model_index.json`` + safetensors per component).
    """

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _optional_components: list[str] = []

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler) -> None:
        super().__init__()
        # The reference forces these two on construction; with SD-1.4's config they are already so.
        config = dict(scheduler.config)
        if config.get("steps_offset", 1) != 1 or config.get("clip_sample", False):
            config["steps_offset"] = 1
            if "clip_sample" in config:
                config["clip_sample"] = False
            scheduler._internal_dict = FrozenDict(config)
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_release(
        cls,
        model: str | os.PathLike | FollowYourPoseLayout | None = None,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        allow_untrained_temporal: bool = False,
    ) -> FollowYourPosePipeline:
        """Load the official release layout (``checkpoints/...``), a posevid-saved folder, or the default hub model.

        ``model`` may also be a :class:`~posevid.models.loading.FollowYourPoseLayout` naming the SD folder and
        the checkpoint separately (what a reference config file does). In half precision the VAE stays in
        float32: SD's VAE decoder overflows to NaN in fp16. A release without the FYP checkpoint is refused
        unless ``allow_untrained_temporal=True`` (see :func:`~posevid.models.loading.load_followyourpose_unet`).
        """
        from posevid.models import loading

        components = loading.load_followyourpose_components(
            model, device=device, dtype=dtype, allow_untrained_temporal=allow_untrained_temporal
        )
        pipe = cls(**components)
        if dtype == torch.float16:
            from diffusers.utils import logging as diffusers_logging

            level = diffusers_logging.get_verbosity()
            diffusers_logging.set_verbosity_error()  # an fp32 VAE is intended here; no "keep in float32" notice
            try:
                pipe.vae.to(dtype=torch.float32)
            finally:
                diffusers_logging.set_verbosity(level)
        return pipe

    @property
    def weights_read(self) -> list[str]:
        """The weight files this pipeline's modules were loaded from (empty for modules built in memory)."""
        from posevid.models.loading import weights_read

        return weights_read(self.components)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Write posevid's folder format (``model_index.json`` + safetensors per component); overwrites, atomically.

        diffusers' generic saver cannot reload a UNet class that lives outside diffusers, so this uses the
        loader's format, which :meth:`from_pretrained` / :meth:`from_release` read back.
        """
        from posevid.models.loading import save_followyourpose

        save_followyourpose(self.components, save_directory, overwrite=True)

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        **kwargs,
    ) -> FollowYourPosePipeline:
        """Load a folder written by :meth:`save_pretrained` (or any layout :meth:`from_release` accepts)."""
        if kwargs:
            dtype = kwargs.pop("torch_dtype", dtype)
        return cls.from_release(pretrained_model_name_or_path, device=device, dtype=dtype)

    # ------------------------------------------------------------------ helpers
    def _encode_text(self, prompts: list[str], device: torch.device) -> torch.Tensor:
        """CLIP last hidden state, padded to ``model_max_length``, no attention mask (as the reference)."""
        ids = self.tokenizer(
            prompts, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids
        return self.text_encoder(ids.to(device))[0]

    def _make_scheduler(self, scheduler):
        if scheduler is None:
            return self.scheduler
        if isinstance(scheduler, str):
            cls = scheduler_class(scheduler)
            if isinstance(self.scheduler, cls):
                return self.scheduler
            return cls.from_config(self.scheduler.config)
        return scheduler  # a scheduler instance

    def _decode(self, latents: torch.Tensor, chunk: int) -> torch.Tensor:
        """(b, c, f, h, w) latents -> (b, 3, f, H, W) float32 in [0, 1]; frames decoded ``chunk`` at a time."""
        b, c, f, h, w = latents.shape
        vae_dtype = next(self.vae.parameters()).dtype
        flat = (latents / self.vae.config.scaling_factor).permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        frames = []
        for i in range(0, flat.shape[0], max(1, chunk)):
            frames.append(self.vae.decode(flat[i : i + chunk].to(vae_dtype)).sample.float())
        video = torch.cat(frames).reshape(b, f, -1, h * self.vae_scale_factor, w * self.vae_scale_factor)
        return (video / 2 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4)

    # ------------------------------------------------------------------ main entry
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        pose: Any,
        video_length: int | None = None,
        frame_stride: int = 5,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 12.5,
        negative_prompt: str | list[str] | None = None,
        num_videos_per_prompt: int = 1,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        seed: int | None = None,
        latents: torch.Tensor | None = None,
        scheduler: str | Any | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable[[int, torch.Tensor, torch.Tensor], Any] | None = None,
        pose_antialias: bool = False,
        decode_chunk_size: int = 1,
        split_cfg: bool = False,
        window_size: int | None = None,
        window_overlap: int = 8,
        window_weighting: str = "triangular",
        window_anchor: str = "video",
    ):
        """Generate ``num_videos_per_prompt`` videos per prompt that follow ``pose``.

        Args:
            prompt: text or list of texts (one video batch per text).
            pose: skeleton video path; uint8 array (T, H, W, 3) of its frames; or a float tensor
                (f, 3, H, W) / (b, f, 3, H, W) in [0, 1] of frames already chosen (b = 1 or the total batch).
            video_length: frames to generate (default: the tensor's frame count, else 8).
            frame_stride: use every ``frame_stride``-th frame of the skeleton video (reference: 5).
            height, width: output size, multiples of 64 (default 512x512 as the reference).
            guidance_scale: classifier-free guidance; <= 1 runs the conditional branch only.
            generator / seed: noise source. Default: a CPU generator, so CPU and GPU give the same video.
            latents: initial noise (b * num_videos_per_prompt, 4, f, h, w); overrides generator/seed.
            scheduler: None (the pipeline's, DDIM for a release), a name from ``SCHEDULERS`` or an instance.
            output_type: ``np`` | ``pt`` | ``uint8`` (the reference's truncating ``(x * 255).astype(uint8)``) | ``latent``.
            callback_on_step_end: ``fn(step_index, t, latents)`` after each step; a returned tensor replaces the latents.
            pose_antialias: antialias the pose resize (off = the reference's torchvision-0.14 behaviour).
            decode_chunk_size: frames per VAE decode call (1 = the reference's VAE slicing).
            split_cfg: run the unconditional and conditional branches as two UNet calls (less memory, same result).
            window_size, window_overlap, window_weighting, window_anchor: denoise in overlapping windows of
                ``window_size`` frames fused at every step, frame 0 of the whole video anchoring every window
                (see :mod:`posevid.pipelines.windowing`; one window covering the clip is the plain path exactly).
                For videos too long to hold in memory use :func:`posevid.pipelines.windowing.generate_long`.
        """
        # ---- validate the cheap things first, so a mistake costs no model time
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise InputError("prompt must be a string or a non-empty list of strings")
        if not isinstance(num_videos_per_prompt, int) or num_videos_per_prompt < 1:
            raise InputError(f"num_videos_per_prompt must be an integer >= 1, got {num_videos_per_prompt!r}")
        if output_type not in OUTPUT_TYPES:
            raise InputError(f"unknown output_type {output_type!r}", hint=f"choose one of {', '.join(OUTPUT_TYPES)}")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise InputError(f"num_inference_steps must be >= 1, got {num_inference_steps!r}")
        height = 512 if height is None else int(height)
        width = 512 if width is None else int(width)
        if height <= 0 or width <= 0 or height % 64 or width % 64:
            raise InputError(f"height and width must be positive multiples of 64, got {height}x{width}", hint="e.g. 512x512, 384x640")
        if video_length is not None and (not isinstance(video_length, int) or video_length < 1):
            raise InputError(f"video_length must be an integer >= 1, got {video_length!r}")
        batch = len(prompts) * num_videos_per_prompt
        if negative_prompt is None:
            negatives = [""] * len(prompts)
        elif isinstance(negative_prompt, str):
            negatives = [negative_prompt] * len(prompts)
        else:
            negatives = list(negative_prompt)
            if len(negatives) != len(prompts):
                raise InputError(
                    f"{len(negatives)} negative prompt(s) for {len(prompts)} prompt(s)", hint="give one per prompt, or a single one"
                )
        if isinstance(generator, list) and len(generator) != batch:
            raise InputError(f"{len(generator)} generators for a batch of {batch} videos", hint="give one per video, or a single one")

        check_window_args(window_size, window_overlap, window_weighting, window_anchor)

        # ---- pose: read/resize once on the CPU (the reference's exact pixels)
        pose_t = prepare_pose(pose, video_length=video_length, stride=frame_stride, height=height, width=width, antialias=pose_antialias)
        video_length = pose_t.shape[1]
        if pose_t.shape[0] not in (1, batch):
            raise InputError(
                f"the pose tensor has batch {pose_t.shape[0]} but {batch} video(s) are generated", hint="use batch 1 or one pose per video"
            )

        device = self._execution_device
        unet_dtype = self.unet.dtype
        latent_shape = (batch, self.unet.config.in_channels, video_length, height // self.vae_scale_factor, width // self.vae_scale_factor)
        if latents is not None and tuple(latents.shape) != latent_shape:
            raise InputError(
                f"latents have shape {tuple(latents.shape)} but {len(prompts)} prompt(s) x {num_videos_per_prompt} video(s) "
                f"at {video_length} frames, {height}x{width} need {latent_shape}"
            )

        # ---- text, once per call: batch order [uncond..., cond...] as the reference
        do_cfg = guidance_scale > 1.0
        cond = self._encode_text(prompts, device).repeat_interleave(num_videos_per_prompt, dim=0)
        text = torch.cat([self._encode_text(negatives, device).repeat_interleave(num_videos_per_prompt, dim=0), cond]) if do_cfg else cond
        text = text.to(device, unet_dtype)

        # ---- pose features, once per call; the SAME pose feeds the unconditional and conditional branches
        features = self.unet.encode_pose(pose_t.to(device, unet_dtype))
        branches = 2 if do_cfg else 1
        features = [_expand_batch(feat, pose_t.shape[0], batch, branches) for feat in features]

        # ---- noise: float32 from a CPU generator unless told otherwise, then moved to the device
        sched = self._make_scheduler(scheduler)
        if latents is None:
            latents = _initial_noise(latent_shape, generator, seed)
        latents = latents.to(device, torch.float32) * sched.init_noise_sigma

        windows = plan_windows(video_length, window_size, window_overlap)
        sched.set_timesteps(num_inference_steps, device=device)
        step_kwargs = _step_kwargs(sched, eta=eta, generator=generator)
        timesteps = sched.timesteps
        with self.progress_bar(total=len(timesteps)) as bar:
            for i, t in enumerate(timesteps):
                model_in = torch.cat([latents] * branches) if do_cfg else latents
                model_in = sched.scale_model_input(model_in, t).to(unet_dtype)
                eps = predict_noise(
                    self.unet, model_in, t, text, features, branches=branches, split_cfg=split_cfg,
                    windows=windows, weighting=window_weighting, anchor=window_anchor,
                )  # fmt: skip
                if do_cfg:
                    eps_uncond, eps_cond = eps.chunk(2)
                    eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
                latents = sched.step(eps, t, latents, **step_kwargs).prev_sample
                if callback_on_step_end is not None:
                    replaced = callback_on_step_end(i, t, latents)
                    if isinstance(replaced, torch.Tensor):
                        latents = replaced
                bar.update()

        if output_type == "latent":
            videos: Any = latents
        else:
            video = self._decode(latents, decode_chunk_size).cpu()  # (b, 3, f, H, W)
            if output_type == "pt":
                videos = video.permute(0, 2, 1, 3, 4).contiguous()
            else:
                arr = video.permute(0, 2, 3, 4, 1).numpy()  # (b, f, H, W, 3)
                videos = (arr * 255).astype(np.uint8) if output_type == "uint8" else arr
        self.maybe_free_model_hooks()
        if not return_dict:
            return (videos,)
        return FollowYourPoseOutput(videos=videos, pose=pose_t)


def _expand_batch(feature: torch.Tensor, pose_batch: int, batch: int, branches: int) -> torch.Tensor:
    """Repeat pose features (batch first) to ``branches * batch`` rows: [uncond videos..., cond videos...]."""
    if pose_batch == 1:
        return feature.expand(batch * branches, *feature.shape[1:])  # a view: no copy until the UNet folds frames
    return torch.cat([feature] * branches) if branches > 1 else feature


def _initial_noise(shape, generator, seed) -> torch.Tensor:
    """Gaussian noise in float32. A CPU generator (the default) makes it device independent."""
    if generator is None:
        generator = torch.Generator("cpu")
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(seed))
    if isinstance(generator, list):
        return torch.cat([torch.randn((1, *shape[1:]), generator=g, device=g.device, dtype=torch.float32) for g in generator])
    return torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32)


def _step_kwargs(scheduler, *, eta: float, generator) -> dict:
    """Pass ``eta``/``generator`` only to schedulers whose ``step`` takes them (DDIM does)."""
    params = set(inspect.signature(scheduler.step).parameters)
    kwargs: dict = {}
    if "eta" in params:
        kwargs["eta"] = eta
    if "generator" in params and not isinstance(generator, list):
        kwargs["generator"] = generator
    return kwargs
