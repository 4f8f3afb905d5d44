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
    from posevid.models.layout import FollowYourPoseLayout
from posevid.pipelines import schedulers as _schedulers
from posevid.pipelines.fyp_checks import SAMPLING_DEFAULTS, check_sampling_args
from posevid.pipelines.fyp_pose_input import FilePoseFrames, PoseFrames, TensorPoseFrames, prepare_pose
from posevid.pipelines.memory import RunOptions
from posevid.pipelines.windowing import plan_windows, predict_noise
from posevid.utils.deprecation import warn_deprecated

SCHEDULERS = _schedulers.FYP_SCHEDULERS


def scheduler_class(name: str):
    """Scheduler class for a short name (``ddim`` is the reference's); see :mod:`posevid.pipelines.schedulers`."""
    return _schedulers.scheduler_class(name, SCHEDULERS)


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
    _callback_tensor_inputs = ["latents"]
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

        ``model`` may also be a :class:`~posevid.models.layout.FollowYourPoseLayout` naming the SD folder and
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
        dtype: torch.dtype | None = None,
        torch_dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> FollowYourPosePipeline:
        """Load a folder written by :meth:`save_pretrained` (or any layout :meth:`from_release` accepts).

        ``torch_dtype`` is diffusers' spelling of ``dtype``; every other keyword is forwarded to the loader
        (:func:`posevid.models.loading.load_followyourpose_components`), which names any it does not know.
        """
        dtype = torch_dtype if torch_dtype is not None else (dtype if dtype is not None else torch.float32)
        return cls.from_release(pretrained_model_name_or_path, device=device, dtype=dtype, **kwargs)

    # ------------------------------------------------------------------ building blocks (diffusers names)
    def check_inputs(self, prompt: str | list[str], height: int | None, width: int | None, **kwargs: Any) -> tuple:
        """The one validation of sampling arguments (one-line InputErrors, before any model time is spent):
        :func:`posevid.pipelines.fyp_checks.check_sampling_args`, torch-free so tasks run it before loading.

        Returns ``(prompts, negative_prompts, height, width)`` normalised (lists; 512x512 when unset).
        """
        return check_sampling_args(prompt, height, width, **kwargs)

    def _encode_text(self, prompts: list[str], device: torch.device) -> torch.Tensor:
        """CLIP last hidden state, padded to ``model_max_length``, no attention mask (as the reference)."""
        ids = self.tokenizer(
            prompts, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids
        return self.text_encoder(ids.to(device))[0]

    def encode_prompt(
        self,
        prompts: list[str],
        device: torch.device,
        num_videos_per_prompt: int,
        do_classifier_free_guidance: bool,
        negative_prompts: list[str] | None = None,
    ) -> torch.Tensor:
        """Text states for the UNet, batch order ``[uncond videos..., cond videos...]`` as the reference (cond only without CFG)."""
        cond = self._encode_text(prompts, device).repeat_interleave(num_videos_per_prompt, dim=0)
        if not do_classifier_free_guidance:
            return cond.to(device, self.unet.dtype)
        negatives = negative_prompts if negative_prompts is not None else [""] * len(prompts)
        uncond = self._encode_text(negatives, device).repeat_interleave(num_videos_per_prompt, dim=0)
        return torch.cat([uncond, cond]).to(device, self.unet.dtype)

    def prepare_latents(
        self,
        batch_size: int,
        video_length: int,
        height: int,
        width: int,
        device: torch.device,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        seed: int | None = None,
    ) -> torch.Tensor:
        """Initial noise ``(b, 4, f, h, w)`` in float32, scaled by the scheduler's ``init_noise_sigma``.

        Drawn from a CPU generator unless one is given (``seed`` seeds it), so a seed gives the same video on CPU and GPU.
        """
        shape = (batch_size, self.unet.config.in_channels, video_length, height // self.vae_scale_factor, width // self.vae_scale_factor)
        if latents is None:
            latents = initial_noise(shape, generator, seed)
        elif tuple(latents.shape) != shape:
            raise InputError(
                f"latents have shape {tuple(latents.shape)} but {batch_size} video(s), {video_length} frames, {height}x{width} need {shape}"
            )
        return latents.to(device, torch.float32) * self.scheduler.init_noise_sigma

    def denoise(
        self,
        latents: torch.Tensor,
        noise_prediction: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        *,
        num_inference_steps: int,
        guidance_scale: float,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        callback_on_step_end: Callable[..., Any] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> torch.Tensor:
        """The denoising loop: ``noise_prediction(model_input, t)`` gives the UNet's (windowed, fused) eps for the
        CFG-stacked, scaled input; this loop owns the guidance, the scheduler step and the step callback."""
        scheduler = self.scheduler
        device = latents.device
        do_cfg = guidance_scale > 1.0
        scheduler.set_timesteps(num_inference_steps, device=device)
        step_kwargs = _step_kwargs(scheduler, eta=eta, generator=generator)
        callback = _adapt_callback(callback_on_step_end)
        tensor_inputs = callback_on_step_end_tensor_inputs or ["latents"]
        timesteps = scheduler.timesteps
        with self.progress_bar(total=len(timesteps)) as bar:
            for i, t in enumerate(timesteps):
                model_in = torch.cat([latents] * 2) if do_cfg else latents
                model_in = scheduler.scale_model_input(model_in, t).to(self.unet.dtype)
                eps = noise_prediction(model_in, t)
                if do_cfg:
                    eps_uncond, eps_cond = eps.chunk(2)
                    eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
                latents = scheduler.step(eps, t, latents, **step_kwargs).prev_sample
                if callback is not None:
                    local = {"latents": latents}
                    outputs = callback(self, i, t, {k: local[k] for k in tensor_inputs})
                    if isinstance(outputs, dict):
                        latents = outputs.get("latents", latents)
                bar.update()
        return latents

    def iter_decoded(self, latents: torch.Tensor, chunk: int = 1):
        """Yield ``(n, 3, H, W)`` float32 frames in [0, 1] of ``(b, c, f, h, w)`` latents, ``chunk`` frames per VAE call
        (1 = the reference's VAE slicing), batch-major. The one VAE decode of the pipeline."""
        b, c, f, h, w = latents.shape
        vae_dtype = next(self.vae.parameters()).dtype
        flat = (latents / self.vae.config.scaling_factor).permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        device = self._execution_device
        for i in range(0, flat.shape[0], max(1, chunk)):
            with torch.no_grad():  # a generator: the caller's no_grad does not reach here between yields
                x = self.vae.decode(flat[i : i + max(1, chunk)].to(device, vae_dtype)).sample.float()
            yield (x / 2 + 0.5).clamp(0, 1)

    def decode_latents(self, latents: torch.Tensor, chunk: int = 1) -> torch.Tensor:
        """``(b, c, f, h, w)`` latents -> ``(b, 3, f, H, W)`` float32 in [0, 1] (see :meth:`iter_decoded`)."""
        b, _, f, h, w = latents.shape
        video = torch.cat(list(self.iter_decoded(latents, chunk)))
        return video.reshape(b, f, -1, h * self.vae_scale_factor, w * self.vae_scale_factor).permute(0, 2, 1, 3, 4)

    def make_scheduler(self, name: str):
        """A new scheduler ``name`` from this pipeline's scheduler config: ``pipe.scheduler = pipe.make_scheduler("dpm++")``."""
        return _schedulers.make_scheduler(name, self.scheduler.config, SCHEDULERS, pin_defaults=False)

    def _make_scheduler(self, scheduler):
        """A per-call scheduler (deprecated): None = the pipeline's, a name or an instance; the component is left untouched."""
        if scheduler is None:
            return self.scheduler
        if isinstance(scheduler, str):
            cls = scheduler_class(scheduler)
            return self.scheduler if isinstance(self.scheduler, cls) else self.make_scheduler(scheduler)
        return scheduler

    def _pose_source(
        self, pose: Any, *, stream: bool, video_length: int | None, stride: int, height: int, width: int, antialias: bool
    ) -> PoseFrames:
        """Prepared pose frames: streamed from a temporary file (long videos) or held as one tensor."""
        if stream and isinstance(pose, (str, os.PathLike)):
            return FilePoseFrames(pose, video_length=video_length or 8, stride=stride, height=height, width=width, antialias=antialias)
        pose_t = prepare_pose(pose, video_length=video_length, stride=stride, height=height, width=width, antialias=antialias)
        return TensorPoseFrames(pose_t)

    # ------------------------------------------------------------------ main entry
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        pose: Any,
        video_length: int | None = None,
        frame_stride: int = SAMPLING_DEFAULTS.frame_stride,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = SAMPLING_DEFAULTS.num_inference_steps,
        guidance_scale: float = SAMPLING_DEFAULTS.guidance_scale,
        negative_prompt: str | list[str] | None = None,
        num_videos_per_prompt: int = SAMPLING_DEFAULTS.num_videos_per_prompt,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        seed: int | None = None,
        latents: torch.Tensor | None = None,
        scheduler: str | Any | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable[..., Any] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        pose_antialias: bool = SAMPLING_DEFAULTS.pose_antialias,
        decode_chunk_size: int = RunOptions.decode_chunk_size,
        split_cfg: bool = RunOptions.split_cfg,
        window_size: int | None = RunOptions.window,
        window_overlap: int = RunOptions.overlap,
        window_weighting: str = RunOptions.window_weighting,
        window_anchor: str = "video",
        stream_pose: bool = False,
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
            generator: noise source, as in diffusers. ``seed``: convenience for a CPU generator seeded so
                (the default: CPU noise, so CPU and GPU give the same video).
            latents: initial noise (b * num_videos_per_prompt, 4, f, h, w); overrides generator/seed.
            scheduler: deprecated per-call override (a name from ``SCHEDULERS`` or an instance); swap the
                component instead: ``pipe.scheduler = make_scheduler("dpm++", pipe.scheduler.config)``.
            output_type: ``np`` | ``pt`` | ``uint8`` (the reference's truncating ``(x * 255).astype(uint8)``) | ``latent``.
            callback_on_step_end: diffusers' ``fn(pipe, step_index, t, callback_kwargs) -> callback_kwargs``;
                a returned ``latents`` replaces them. The old ``fn(step_index, t, latents)`` still works (deprecated).
            callback_on_step_end_tensor_inputs: which tensors go into ``callback_kwargs`` (only ``latents``).
            pose_antialias: antialias the pose resize (off = the reference's torchvision-0.14 behaviour).
            decode_chunk_size: frames per VAE decode call (1 = the reference's VAE slicing).
            split_cfg: run the unconditional and conditional branches as two UNet calls (less memory, same result).
            window_size, window_overlap, window_weighting, window_anchor: denoise in overlapping windows of
                ``window_size`` frames fused at every step (see :mod:`posevid.pipelines.windowing`). No window
                is one window covering the clip: the same loop, the plain path.
            stream_pose: with a path as ``pose``, prepare the pose frames into a temporary file and encode them
                window by window (memory independent of the length; what :func:`~posevid.pipelines.windowing.generate_long` uses).
        """
        prompts, negatives, height, width = self.check_inputs(
            prompt, height, width, negative_prompt=negative_prompt, num_videos_per_prompt=num_videos_per_prompt,
            num_inference_steps=num_inference_steps, video_length=video_length, output_type=output_type, generator=generator,
            window_size=window_size, window_overlap=window_overlap, window_weighting=window_weighting, window_anchor=window_anchor,
        )  # fmt: skip
        bad_inputs = set(callback_on_step_end_tensor_inputs or []) - set(self._callback_tensor_inputs)
        if bad_inputs:
            raise InputError(f"callback_on_step_end_tensor_inputs {sorted(bad_inputs)} not in {self._callback_tensor_inputs}")
        batch = len(prompts) * num_videos_per_prompt
        if scheduler is not None:
            warn_deprecated(
                "FollowYourPosePipeline(scheduler=...) is deprecated: set pipe.scheduler (posevid.pipelines.schedulers.swap_scheduler)"
            )

        # ---- pose: read/resize once on the CPU (the reference's exact pixels)
        frames = self._pose_source(
            pose, stream=stream_pose, video_length=video_length, stride=frame_stride, height=height, width=width, antialias=pose_antialias
        )
        own_scheduler = self.scheduler
        try:
            video_length = frames.num_frames
            if frames.batch not in (1, batch):
                raise InputError(
                    f"the pose tensor has batch {frames.batch} but {batch} video(s) are generated", hint="use batch 1 or one pose per video"
                )
            device = self._execution_device
            self.scheduler = self._make_scheduler(scheduler)
            latents = self.prepare_latents(batch, video_length, height, width, device, generator, latents, seed)
            do_cfg = guidance_scale > 1.0
            text = self.encode_prompt(prompts, device, num_videos_per_prompt, do_cfg, negatives)
            branches = 2 if do_cfg else 1
            features = _FeatureCache(self.unet, frames, batch, branches, device)
            windows = plan_windows(video_length, window_size, window_overlap)

            def noise_prediction(model_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                return predict_noise(
                    self.unet, model_in, t, text, features, branches=branches, split_cfg=split_cfg,
                    windows=windows, weighting=window_weighting, anchor=window_anchor,
                )  # fmt: skip

            latents = self.denoise(
                latents, noise_prediction, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, eta=eta,
                generator=generator, callback_on_step_end=callback_on_step_end,
                callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            )  # fmt: skip
            features.clear()
        finally:
            self.scheduler = own_scheduler
            pose_t = frames.tensor() if isinstance(frames, TensorPoseFrames) else None
            frames.close()

        if output_type == "latent":
            videos: Any = latents
        else:
            video = self.decode_latents(latents, decode_chunk_size).cpu()  # (b, 3, f, H, W)
            if output_type == "pt":
                videos = video.permute(0, 2, 1, 3, 4).contiguous()
            else:
                arr = video.permute(0, 2, 3, 4, 1).numpy()  # (b, f, H, W, 3)
                videos = (arr * 255).astype(np.uint8) if output_type == "uint8" else arr
        self.maybe_free_model_hooks()
        if not return_dict:
            return (videos,)
        return FollowYourPoseOutput(videos=videos, pose=pose_t)


class _FeatureCache:
    """Pose features per window, ``(start, stop) -> [feature, ...]`` with ``branches * batch`` rows.

    A held pose tensor is encoded once for the whole clip and sliced per window; streamed frames are encoded
    window by window (one window kept: it serves both CFG branches and, with one window, every step).
    """

    def __init__(self, unet, frames: PoseFrames, batch: int, branches: int, device: torch.device) -> None:
        self.unet, self.frames, self.batch, self.branches, self.device = unet, frames, batch, branches, device
        self.whole = isinstance(frames, TensorPoseFrames)
        self.cache: dict[tuple[int, int], list[torch.Tensor]] = {}

    def _encode(self, start: int, stop: int) -> list[torch.Tensor]:
        pose = self.frames.window(start, stop).to(self.device, self.unet.dtype)
        return [_expand_batch(f, pose.shape[0], self.batch, self.branches) for f in self.unet.encode_pose(pose)]

    def __call__(self, start: int, stop: int) -> list[torch.Tensor]:
        if self.whole:
            if not self.cache:
                self.cache[(0, self.frames.num_frames)] = self._encode(0, self.frames.num_frames)
            full = self.cache[(0, self.frames.num_frames)]
            return full if (start, stop) == (0, self.frames.num_frames) else [f[:, :, start:stop] for f in full]
        if (start, stop) not in self.cache:
            self.cache.clear()
            self.cache[(start, stop)] = self._encode(start, stop)
        return self.cache[(start, stop)]

    def clear(self) -> None:
        self.cache.clear()


def _expand_batch(feature: torch.Tensor, pose_batch: int, batch: int, branches: int) -> torch.Tensor:
    """Repeat pose features (batch first) to ``branches * batch`` rows: [uncond videos..., cond videos...]."""
    if pose_batch == 1:
        return feature.expand(batch * branches, *feature.shape[1:])  # a view: no copy until the UNet folds frames
    return torch.cat([feature] * branches) if branches > 1 else feature


def initial_noise(shape, generator, seed) -> torch.Tensor:
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


def _adapt_callback(callback: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """diffusers' ``fn(pipe, i, t, kwargs)``; the pre-redesign ``fn(i, t, latents)`` is wrapped with a DeprecationWarning."""
    if callback is None:
        return None
    try:
        params = [p for p in inspect.signature(callback).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        has_var = any(p.kind == p.VAR_POSITIONAL for p in inspect.signature(callback).parameters.values())
    except (TypeError, ValueError):
        return callback
    if has_var or len(params) != 3:
        return callback
    warn_deprecated(
        "callback_on_step_end(i, t, latents) is deprecated: use diffusers' fn(pipe, i, t, callback_kwargs) returning callback_kwargs"
    )

    def legacy(pipe, i, t, kwargs):
        replaced = callback(i, t, kwargs["latents"])
        return {"latents": replaced} if isinstance(replaced, torch.Tensor) else kwargs

    return legacy
