"""Follow-Your-Pose training: stage 1 (pose encoder on image-pose pairs) and stage 2 (temporal layers on clips).

Stage 2 (``fyp-temporal``) follows the released ``train_followyourpose.py`` (spec e) with its data bugs
fixed (h.17): per-sample captions (the reference used the first caption of the batch), the caption chunk of
the sampled frames, no placeholder pose, and the pose encoder is not run at all (``inject_pose=False``: the
reference's train mode never added its features anyway). Only ``trainable_modules`` get gradients and only
they are handed to the optimizer (the reference gave it every UNet parameter, h.19).

Stage 1 (``fyp-pose-encoder``) is not in the release. As in the paper, SD is frozen and only the
T2I-Adapter-style pose encoder learns, on single images (f = 1). It runs on diffusers'
``UNet2DConditionModel`` built from the spatial weights of the FYP UNet plus ``T2IAdapter`` features as
``down_intrablock_additional_residuals`` - the configuration the spec verified equal to the reference UNet
with f = 1 and the temporal layers at identity - so temporal weights neither help nor leak into stage 1.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from posevid.errors import InputError
from posevid.training.recipe import Recipe, keyed_randint, keyed_randn, keyed_uniform, move

log = logging.getLogger("posevid.training")

SALT_VAE, SALT_NOISE, SALT_T, SALT_TEXT_DROP, SALT_POSE_DROP = 1, 2, 3, 4, 5


def load_fyp_components(path: str | os.PathLike, device, dtype=torch.float32, *, temporal_init: str = "checkpoint") -> dict[str, Any]:
    """The FYP model to train from.

    ``temporal_init="checkpoint"``: a release / posevid folder as ``posevid generate`` loads it (fine-tuning).
    ``"fresh"`` (also implied when ``path`` is the ``stable-diffusion-v1-4`` folder itself, as in the reference
    ``pose_train.yaml``): the reference stage-2 start - SD weights, ``pose_encoder.pth`` (beside the SD folder),
    temporal layers at their initialisation (``conv_temporal`` identity) - ignoring any FYP checkpoint.
    """
    from dataclasses import replace

    from posevid.models import loading

    layout = loading.locate_followyourpose(path)
    sd_given = Path(path).resolve() == layout.sd_dir.resolve()
    if temporal_init == "fresh" or (sd_given and layout.checkpoint is None):
        pose = layout.pose_encoder or next((p for p in (layout.sd_dir.parent / "pose_encoder.pth",) if p.is_file()), None)
        layout = replace(layout, checkpoint=None, pose_encoder=pose)
    elif temporal_init != "checkpoint":
        raise InputError(f"temporal_init {temporal_init!r} is not 'checkpoint' or 'fresh'", hint="fix --set temporal_init=...")
    unet = loading.load_followyourpose_unet(layout, allow_untrained_temporal=True)  # training fills the temporal layers
    comps = {
        "unet": unet,
        "vae": loading.load_vae(layout.sd_dir / "vae"),
        "text_encoder": loading.load_clip_text_encoder(layout.sd_dir / "text_encoder"),
        "tokenizer": loading.load_clip_tokenizer(layout.sd_dir / "tokenizer"),
        "scheduler": loading.load_ddim_scheduler(layout.sd_dir / "scheduler"),
    }
    for name in ("unet", "vae", "text_encoder"):
        move(comps[name], device, dtype).eval().requires_grad_(False)
    return comps


class _FYPBase(Recipe):
    data_kind: Any = ()

    def _text(self, prompts: list[str]) -> torch.Tensor:
        ids = self.tokenizer(
            prompts, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids
        with torch.no_grad():
            return self.text_encoder(ids.to(self.device))[0]

    def _latents(self, pixels: torch.Tensor, keys: list[tuple[int, ...]], per_sample_shape: tuple[int, ...]) -> torch.Tensor:
        """VAE posterior sample (per-sample keyed noise) x scaling factor; pixels ``(N, 3, H, W)`` in [-1, 1]."""
        with torch.no_grad():
            dist = self.vae.encode(pixels.to(self.device, dtype=self.vae.dtype)).latent_dist
            eps = keyed_randn(keys, SALT_VAE, per_sample_shape, self.device, dist.mean.dtype).reshape(dist.mean.shape)
            return (dist.mean + dist.std * eps) * self.vae.config.scaling_factor

    def _target(self, latents, noise, timesteps):
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            return self.noise_scheduler.get_velocity(latents, noise, timesteps)
        return noise

    def _noise_scheduler(self, scheduler) -> None:
        from diffusers import DDPMScheduler

        self.noise_scheduler = DDPMScheduler.from_config(scheduler.config)
        if self.cfg.get("prediction_type"):
            self.noise_scheduler.register_to_config(prediction_type=self.cfg["prediction_type"])


# ================================================================================================
# Stage 2: temporal layers
# ================================================================================================
class TemporalRecipe(_FYPBase):
    name = "fyp-temporal"

    def setup(self, accelerator, weight_dtype: torch.dtype) -> None:
        self.device = accelerator.device
        comps = load_fyp_components(
            self.cfg["pretrained_model_path"], device=self.device, temporal_init=self.cfg.get("temporal_init", "checkpoint")
        )
        self.components = comps
        self.vae, self.text_encoder, self.tokenizer, self.unet = comps["vae"], comps["text_encoder"], comps["tokenizer"], comps["unet"]
        self.scheduler = comps["scheduler"]
        self._noise_scheduler(self.scheduler)
        for m in (self.vae, self.text_encoder, self.unet):
            m.requires_grad_(False)
        move(self.vae, None, weight_dtype).eval()
        move(self.text_encoder, None, weight_dtype).eval()
        names = list(self.cfg.get("trainable_modules") or [])
        params = self.unet.trainable_modules(names)
        if not params:
            raise InputError(
                f"trainable_modules {names} match no module of the FYP UNet",
                hint="use e.g. attn1.to_q, attn2.to_q, attn_temp, conv_temporal",
            )
        for p in params:
            p.requires_grad_(True)
        # frozen UNet weights can live in the low-precision dtype; trained ones stay fp32 for the optimizer
        if weight_dtype != torch.float32:
            for p in self.unet.parameters():
                if not p.requires_grad:
                    p.data = p.data.to(weight_dtype)
        if self.cfg.get("gradient_checkpointing"):
            self.unet.enable_gradient_checkpointing()
        if self.cfg.get("init_checkpoint"):
            from posevid.utils.checkpoint import load_state_dict_file

            self.load_trainable_state_dict(load_state_dict_file(self.cfg["init_checkpoint"]))
        self.unet_prepared: nn.Module = self.unet
        n = sum(p.numel() for p in params)
        log.info("fyp-temporal: %d trainable tensors, %d parameters (%s)", len(params), n, ", ".join(names))

    def trainable_modules(self) -> list[nn.Module]:
        return [self.unet]

    def set_prepared(self, modules: list[nn.Module]) -> None:
        self.unet_prepared = modules[0]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.unet.parameters() if p.requires_grad]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.unet.named_parameters() if p.requires_grad}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        from posevid.utils.checkpoint import strip_prefix

        state = strip_prefix(state, "module.")
        own = dict(self.unet.named_parameters())
        missing = [k for k in state if k not in own]
        if missing:
            raise InputError(f"trained weights do not fit this FYP UNet: unknown key {missing[0]}", hint="resume with the same base model")
        with torch.no_grad():
            for k, v in state.items():
                own[k].copy_(v.to(own[k].dtype))

    def dataset(self):
        from posevid.data.datasets import VideoClipDataset

        td = self.cfg["train_data"]
        return VideoClipDataset(
            td["data_dir"],
            n_sample_frames=int(td["n_sample_frames"]),
            sample_frame_rate=int(td["sample_frame_rate"]),
            width=int(td["width"]),
            height=int(td["height"]),
            sample_start_idx=int(td.get("sample_start_idx", 0)),
            short_clips=td.get("short_clips", "fallback"),
        )

    def loss(self, batch: dict[str, Any], keys: list[tuple[int, ...]], micro_step: int) -> torch.Tensor:
        pixels = batch["pixel_values"]  # (b, f, 3, H, W) in [-1, 1]
        b, f = pixels.shape[:2]
        h, w = pixels.shape[-2] // 8, pixels.shape[-1] // 8
        scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        h, w = pixels.shape[-2] // scale, pixels.shape[-1] // scale
        c = self.vae.config.latent_channels
        latents = self._latents(pixels.flatten(0, 1), keys, (f, c, h, w))
        latents = latents.reshape(b, f, c, h, w).transpose(1, 2).float()  # (b, c, f, h, w)
        noise = keyed_randn(keys, SALT_NOISE, (c, f, h, w), self.device)
        t = keyed_randint(keys, SALT_T, self.noise_scheduler.config.num_train_timesteps, self.device).long()
        noisy = self.noise_scheduler.add_noise(latents, noise, t)
        text = self._text(list(batch["prompt"]))  # one caption per sample (reference: the first of the batch)
        pred = self.unet_prepared(noisy, t, text, inject_pose=False).sample
        return F.mse_loss(pred.float(), self._target(latents, noise, t).float(), reduction="mean")

    # ------------------------------------------------------------------ outputs
    def pipeline(self):
        from diffusers import DDIMScheduler

        from posevid.pipelines.followyourpose import FollowYourPosePipeline

        sched = DDIMScheduler.from_config(self.scheduler.config)
        return FollowYourPosePipeline(
            vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer, unet=self.unet, scheduler=sched
        )

    def export(self, out_dir: Path, step: int, epoch: int) -> list[Path]:
        return export_fyp_release(self, Path(out_dir), step, self.trainable_state_dict())

    def validate(self, out_dir: Path, step: int) -> list[Path]:
        return validate_fyp(self, out_dir, step)


def _validation_pose(recipe: _FYPBase) -> str | None:
    vd = recipe.cfg.get("validation_data") or {}
    path = vd.get("skeleton_path")
    if path:
        return str(path) if Path(path).is_file() else None
    # fall back to a skeleton rendered by 'posevid prepare' for the training clips
    data = Path(recipe.cfg["train_data"]["data_dir"])
    skeletons = sorted((data / "skeletons").glob("*.mp4")) if (data / "skeletons").is_dir() else []
    return str(skeletons[0]) if skeletons else None


def validate_fyp(recipe: _FYPBase, out_dir: Path, step: int) -> list[Path]:
    """Sample every validation prompt with the pose of ``validation_data.skeleton_path`` into ``out_dir``."""
    from posevid.video import write_video

    vd = recipe.cfg.get("validation_data") or {}
    prompts = vd.get("prompts") or []
    pose = _validation_pose(recipe)
    if not prompts or pose is None:
        log.info(
            "validation at step %d skipped: %s", step, "no prompts" if not prompts else "no skeleton video (validation_data.skeleton_path)"
        )
        return []
    pipe = recipe.pipeline()
    was_training = recipe.unet.training
    recipe.unet.eval()
    paths = []
    try:
        for i, prompt in enumerate(prompts):
            gen = torch.Generator().manual_seed(int(recipe.cfg["seed"]))
            out = pipe(
                prompt,
                pose=pose,
                video_length=int(vd.get("video_length", 8)),
                frame_stride=int(vd.get("frame_skeleton_stride", 5)),
                height=int(vd.get("height", 512)),
                width=int(vd.get("width", 512)),
                num_inference_steps=int(vd.get("num_inference_steps", 50)),
                guidance_scale=float(vd.get("guidance_scale", 12.5)),
                generator=gen,
                output_type="uint8",
            )
            frames = out.videos[0] if hasattr(out, "videos") else out[0][0]
            path = write_video(out_dir / f"{i:02d}_{_slug(prompt)}.mp4", frames, fps=8)
            paths.append(path)
    finally:
        recipe.unet.train(was_training)
    return paths


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:60] or "prompt"


def export_fyp_release(recipe: _FYPBase, out_dir: Path, step: int, trained: dict[str, torch.Tensor]) -> list[Path]:
    """``out/release/checkpoints/...`` (the official layout: loadable by the reference code and by
    ``posevid generate --model out/release``), ``out/posevid/`` (our safetensors folder) and
    ``out/temporal.safetensors`` (the temporal layers alone).

    The base model is reloaded in fp32 and only the ``trained`` UNet tensors are put in: frozen weights that
    sat in fp16/bf16 during mixed-precision training are therefore exported unrounded.
    """
    from safetensors.torch import save_file

    from posevid.models.loading import save_followyourpose, save_followyourpose_reference
    from posevid.utils.outputs import atomic_path, write_sidecar

    out_dir = Path(out_dir)
    comps = load_fyp_components(recipe.cfg["pretrained_model_path"], "cpu", temporal_init=recipe.cfg.get("temporal_init", "checkpoint"))
    own = dict(comps["unet"].state_dict())
    unknown = [k for k in trained if k not in own]
    if unknown:
        raise InputError(f"trained tensor {unknown[0]} is not in the FYP UNet", hint="this is a bug in the recipe")
    with torch.no_grad():
        for k, v in trained.items():
            own[k].copy_(v.detach().float().cpu())
    release = save_followyourpose_reference(comps, out_dir / "release", overwrite=True)
    ours = save_followyourpose(comps, out_dir / "posevid", overwrite=True)
    temporal = {k: v.contiguous() for k, v in comps["unet"].temporal_state_dict().items()}
    with atomic_path(out_dir / "temporal.safetensors") as tmp:
        save_file(temporal, str(tmp))
    write_sidecar(out_dir / "export.json", {"recipe": recipe.name, "step": step, "config": recipe.cfg}, kind="training-export")
    return [release, ours, out_dir / "temporal.safetensors"]


# ================================================================================================
# Stage 1: pose encoder
# ================================================================================================
class PoseEncoderRecipe(_FYPBase):
    name = "fyp-pose-encoder"

    def setup(self, accelerator, weight_dtype: torch.dtype) -> None:
        from diffusers import T2IAdapter, UNet2DConditionModel

        from posevid.models.convert import split_fyp_state

        self.device = accelerator.device
        comps = load_fyp_components(
            self.cfg["pretrained_model_path"], device="cpu", temporal_init=self.cfg.get("temporal_init", "checkpoint")
        )
        self.components = comps
        self.vae, self.text_encoder, self.tokenizer, fyp_unet = comps["vae"], comps["text_encoder"], comps["tokenizer"], comps["unet"]
        self.scheduler = comps["scheduler"]
        self._noise_scheduler(self.scheduler)
        spatial, _, _ = split_fyp_state(fyp_unet.state_dict())
        cfg2d = {
            k: v
            for k, v in fyp_unet.config.items()
            if not k.startswith("_") and not k.startswith("pose_encoder") and k != "temporal_conv_rank"
        }
        self.unet = UNet2DConditionModel(**cfg2d)
        self.unet.load_state_dict(spatial, strict=True)
        ad = fyp_unet.pose_encoder
        self.adapter = T2IAdapter(
            in_channels=fyp_unet.config.pose_encoder_in_channels,
            channels=list(fyp_unet.config.block_out_channels),
            num_res_blocks=fyp_unet.config.pose_encoder_num_res_blocks,
            downscale_factor=fyp_unet.config.pose_encoder_downscale_factor,
            adapter_type="full_adapter",
        )
        init = self.cfg.get("init_pose_encoder") or "model"
        if init == "model":
            self.adapter.load_state_dict(ad.state_dict())
        elif init != "random":
            from posevid.models.convert import pose_encoder_reference_to_posevid, strip_module_prefix
            from posevid.utils.checkpoint import load_state_dict_file

            st = strip_module_prefix(load_state_dict_file(init))
            if not any(k.startswith("adapter.") for k in st):
                st = pose_encoder_reference_to_posevid(st)
            self.adapter.load_state_dict(st, strict=True)
        for m in (self.vae, self.text_encoder, self.unet):
            m.requires_grad_(False)
            move(m, self.device, weight_dtype)
        self.vae.eval()
        self.text_encoder.eval()
        self.adapter.to(self.device).requires_grad_(True).train()
        if self.cfg.get("gradient_checkpointing"):
            self.unet.enable_gradient_checkpointing()
        self.adapter_prepared: nn.Module = self.adapter

    def trainable_modules(self) -> list[nn.Module]:
        return [self.adapter]

    def set_prepared(self, modules: list[nn.Module]) -> None:
        self.adapter_prepared = modules[0]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self.adapter.state_dict().items()}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        from posevid.utils.checkpoint import strip_prefix

        self.adapter.load_state_dict(strip_prefix(state, "module."), strict=True)

    def dataset(self):
        from posevid.data.datasets import ImagePoseDataset

        td = self.cfg["train_data"]
        return ImagePoseDataset(td["data_dir"], width=int(td["width"]), height=int(td["height"]))

    def loss(self, batch: dict[str, Any], keys: list[tuple[int, ...]], micro_step: int) -> torch.Tensor:
        pixels = batch["pixel_values"]
        b = pixels.shape[0]
        scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        h, w = pixels.shape[-2] // scale, pixels.shape[-1] // scale
        c = self.vae.config.latent_channels
        latents = self._latents(pixels, keys, (c, h, w)).float()
        noise = keyed_randn(keys, SALT_NOISE, (c, h, w), self.device)
        t = keyed_randint(keys, SALT_T, self.noise_scheduler.config.num_train_timesteps, self.device).long()
        noisy = self.noise_scheduler.add_noise(latents, noise, t)
        # conditioning dropout for classifier-free guidance: text and/or pose dropped per sample
        prompts = [
            ("" if keyed_uniform(k, SALT_TEXT_DROP) < float(self.cfg.get("uncond_rate", 0)) else p)
            for k, p in zip(keys, batch["prompt"], strict=True)
        ]
        keep = torch.tensor(
            [keyed_uniform(k, SALT_POSE_DROP) >= float(self.cfg.get("pose_dropout_rate", 0)) for k in keys], device=self.device
        )
        text = self._text(prompts).to(self.unet.dtype)
        feats = self.adapter_prepared(batch["pose"].to(self.device))
        feats = [f * keep.view(b, 1, 1, 1).to(f.dtype) for f in feats]
        pred = self.unet(
            noisy.to(self.unet.dtype), t, text, down_intrablock_additional_residuals=[f.to(self.unet.dtype) for f in feats]
        ).sample
        return F.mse_loss(pred.float(), self._target(latents, noise, t).float(), reduction="mean")

    def export(self, out_dir: Path, step: int, epoch: int) -> list[Path]:
        """``pose_encoder.pth`` (reference keys, loadable by the reference UNet constructor), ``pose_encoder/``
        (diffusers ``T2IAdapter`` folder) and a full release with the new encoder for ``posevid generate``."""
        from posevid.models.convert import pose_encoder_posevid_to_reference
        from posevid.utils.outputs import atomic_path

        out_dir = Path(out_dir)
        state = {k: v.detach().float().cpu().contiguous() for k, v in self.adapter.state_dict().items()}
        with atomic_path(out_dir / "pose_encoder.pth") as tmp:
            torch.save(pose_encoder_posevid_to_reference(state), tmp)
        self.adapter.save_pretrained(out_dir / "pose_encoder", safe_serialization=True)
        paths = export_fyp_release(self, out_dir, step, {f"pose_encoder.{k}": v for k, v in state.items()})
        return [out_dir / "pose_encoder.pth", out_dir / "pose_encoder", *paths]

    def validate(self, out_dir: Path, step: int) -> list[Path]:
        return []
