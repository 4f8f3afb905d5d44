"""DreamPose training: base model (UNet + adapter), subject fine-tune (UNet + adapter), VAE decoder fine-tune.

Follows the reference ``train.py`` / ``finetune-unet.py`` / ``finetune-vae.py`` (spec d): frozen VAE and CLIP,
one AdamW over UNet + adapter, gradient clipping on the UNet, MSE on epsilon, DDPM noise at ``t ~ U{0..999}``,
poses nearest-resized to the latent and concatenated after it, context = adapter(CLIP last_hidden_state,
VAE latent sample) of the conditioning frame. Condition dropout is one draw per (local) batch, rate ``r``:
``p <= r/3`` poses zeroed, ``<= 2r/3`` conditioning image zeroed, ``<= r`` both (d.1).

Value ranges (d.5) are configurable; the defaults are the reference's: base = the deleted UBC set train.py
imports (images and poses in [-1, 1]), subject = finetune-unet.py ([0, 1] images, raw UV), VAE = [0, 1].
The CLIP processor always receives uint8 images (converted from the configured range), with
``do_rescale=True`` stated explicitly: float inputs are rescaled differently by transformers 4 and 5.

``dreampose-subject`` keeps the reference's target/pose mismatch by default (target = conditioning frame
``frame_i`` while the pose is ``pose_j`` of another frame); ``fix_subject_target: true`` trains on
``frame_j`` with its own pose instead (changes results; off for parity).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from posevid.errors import CheckpointError, InputError
from posevid.training.recipe import Recipe, keyed_randint, keyed_randn, keyed_uniform, move

log = logging.getLogger("posevid.training")

SALT_VAE, SALT_NOISE, SALT_T, SALT_DROP, SALT_VAE_COND = 11, 12, 13, 14, 15


def _sd_folder(path: Path) -> Path | None:
    for cand in (path, path / "checkpoints" / "stable-diffusion-v1-4", path / "stable-diffusion-v1-4"):
        if (cand / "unet" / "config.json").is_file() and (cand / "vae" / "config.json").is_file():
            return cand
    return None


def _load_sd_unet(folder: Path):
    """SD-1.x ``unet/`` (config + safetensors or weights-only ``.bin``): never unpickles objects."""
    from diffusers import UNet2DConditionModel

    from posevid.utils.checkpoint import load_into, load_state_dict_file

    config = {k: v for k, v in json.loads((folder / "config.json").read_text()).items() if not k.startswith("_")}
    weights = next(
        (folder / n for n in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin") if (folder / n).is_file()), None
    )
    if weights is None:
        raise CheckpointError(f"no UNet weights in {folder}", hint="expected diffusion_pytorch_model.safetensors or .bin")
    unet = UNet2DConditionModel(**config)
    load_into(unet, load_state_dict_file(weights), what="SD UNet", source=weights)
    return unet


def _to_uint8(images: torch.Tensor, image_range: str) -> list[np.ndarray]:
    x = (images.float() + 1) * 127.5 if image_range == "-1_1" else images.float() * 255
    return list(x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())


class _DreamPoseBase(Recipe):
    def _load_models(self, accelerator) -> None:
        """UNet/VAE/adapter/CLIP/scheduler from a DreamPose folder (release or posevid) or an SD-1.x folder."""
        from posevid.models.dreampose import (
            CLIP_HUB_ID,
            EmbeddingAdapter,
            build_dreampose_unet,
            is_posevid_folder,
            load_clip_image_encoder,
            load_dreampose_components,
            release_epochs,
        )

        base = Path(self.cfg["pretrained_model_path"])
        clip_spec = self.cfg.get("clip_model")
        if base.is_dir() and (is_posevid_folder(base) or release_epochs(base)):
            comps = load_dreampose_components(base, epoch=self.cfg.get("epoch"), clip=clip_spec)
            self.unet, self.vae, self.adapter = comps.unet, comps.vae, comps.adapter
            self.image_encoder, self.processor, scheduler = comps.image_encoder, comps.image_processor, comps.scheduler
            self.base_kind = "dreampose"
        else:
            from diffusers import PNDMScheduler

            from posevid.models.loading import load_vae

            sd = _sd_folder(base)
            if sd is None:
                raise CheckpointError(
                    f"{base} is neither a DreamPose folder nor a Stable Diffusion 1.x folder (unet/ + vae/)",
                    hint="pass --pretrained-model with an SD-1.4 folder (base training) or a DreamPose checkpoint folder",
                )
            self.unet = build_dreampose_unet(_load_sd_unet(sd / "unet"))
            self.vae = load_vae(sd / "vae")
            scheduler = PNDMScheduler.from_pretrained(sd / "scheduler")
            if clip_spec is None:
                clip_spec = next((str(p) for p in (base / "clip", sd.parent / "clip") if p.is_dir()), CLIP_HUB_ID)
            self.image_encoder, self.processor = load_clip_image_encoder(clip_spec)
            td = self.cfg["train_data"]
            f = 2 ** (len(self.vae.config.block_out_channels) - 1)
            cfgv = self.image_encoder.config
            tokens = (cfgv.image_size // cfgv.patch_size) ** 2 + 1
            self.adapter = EmbeddingAdapter(
                clip_tokens=tokens,
                clip_dim=cfgv.hidden_size,
                latent_channels=self.vae.config.latent_channels,
                latent_size=(int(td["height"]) // f, int(td["width"]) // f),
                out_tokens=tokens,
            )
            self.base_kind = "sd"
        self.scheduler = scheduler
        if self.cfg.get("init_checkpoint"):
            self._load_custom_chkpt(Path(self.cfg["init_checkpoint"]))
        self.device = accelerator.device
        self.rank = accelerator.process_index

    def _load_custom_chkpt(self, path: Path) -> None:
        """Reference ``--custom_chkpt``: a ``unet_epoch_N.pth``; the adapter comes from ``adapter_N.pth`` beside it."""
        from posevid.models.convert import strip_module_prefix
        from posevid.utils.checkpoint import load_into, load_state_dict_file

        if self.name == "dreampose-vae":
            from posevid.models.dreampose import load_vae_weights

            load_vae_weights(self.vae, path)
            return
        load_into(self.unet, strip_module_prefix(load_state_dict_file(path)), what="DreamPose UNet", source=path)
        adapter_path = path.with_name(path.name.replace("unet_epoch", "adapter"))
        if adapter_path != path and adapter_path.is_file():
            load_into(self.adapter, strip_module_prefix(load_state_dict_file(adapter_path)), what="DreamPose adapter", source=adapter_path)
        else:
            log.warning("init_checkpoint %s: no %s beside it; the adapter keeps its base weights", path, adapter_path.name)

    def _sample_latent(self, images: torch.Tensor, keys, salt: int) -> torch.Tensor:
        with torch.no_grad():
            dist = self.vae.encode(images.to(self.device, dtype=self.vae.dtype)).latent_dist
            eps = keyed_randn(keys, salt, tuple(dist.mean.shape[1:]), self.device, dist.mean.dtype)
            return (dist.mean + dist.std * eps) * self.vae.config.scaling_factor

    def _release_dir(self, out_dir: Path) -> Path:
        return Path(out_dir) / "release"

    def _save_reference_vae_folder(self, ckpt: Path) -> None:
        """``checkpoint-N/`` as the reference pipeline folder: vae/, scheduler/, unet/config.json (true in_channels)."""
        self.vae.save_pretrained(ckpt / "vae", safe_serialization=True)
        self.scheduler.save_pretrained(ckpt / "scheduler")
        (ckpt / "unet").mkdir(parents=True, exist_ok=True)
        (ckpt / "unet" / "config.json").write_text(json.dumps(dict(self.unet.config), indent=2, default=list))

    def _save_clip(self, release: Path) -> None:
        self.image_encoder.save_pretrained(release / "clip", safe_serialization=True)
        self.processor.save_pretrained(release / "clip")


# ================================================================================================
class DreamPoseUNetRecipe(_DreamPoseBase):
    """``dreampose-base`` and ``dreampose-subject`` (they differ in data handling and defaults)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        self.name = cfg["recipe"]

    def setup(self, accelerator, weight_dtype: torch.dtype) -> None:
        from diffusers import DDPMScheduler

        self._load_models(accelerator)
        self.noise_scheduler = DDPMScheduler.from_config(self.scheduler.config)
        if self.cfg.get("prediction_type"):
            self.noise_scheduler.register_to_config(prediction_type=self.cfg["prediction_type"])
        # the frozen VAE and CLIP are small (~84 M / ~88 M params): they stay fp32 (autocast computes in low
        # precision) so that the exported checkpoint-N/vae is not rounded to fp16/bf16
        move(self.vae.requires_grad_(False), self.device).eval()
        move(self.image_encoder.requires_grad_(False), self.device).eval()
        self.unet.to(self.device).requires_grad_(True).train()
        self.adapter.to(self.device).requires_grad_(True).train()
        if self.cfg.get("gradient_checkpointing"):
            self.unet.enable_gradient_checkpointing()
        self.unet_p, self.adapter_p = self.unet, self.adapter

    def trainable_modules(self) -> list[nn.Module]:
        return [self.unet, self.adapter]

    def set_prepared(self, modules: list[nn.Module]) -> None:
        self.unet_p, self.adapter_p = modules

    def clip_parameters(self) -> list[nn.Parameter]:
        return list(self.unet.parameters())  # the reference clips the UNet only

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        sd = {f"unet.{k}": v for k, v in self.unet.state_dict().items()}
        sd.update({f"adapter.{k}": v for k, v in self.adapter.state_dict().items()})
        return sd

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.unet.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("unet.")}, strict=True)
        self.adapter.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("adapter.")}, strict=True)

    def dataset(self):
        from posevid.data.datasets import DreamPoseFrameDataset

        td = self.cfg["train_data"]
        mode = "subject" if self.name == "dreampose-subject" else "base"
        return DreamPoseFrameDataset(
            td["data_dir"],
            mode=mode,
            height=int(td["height"]),
            width=int(td["width"]),
            image_range=self.cfg.get("image_range", "0_1"),
            pose_range=self.cfg.get("pose_range", "uv"),
            augment=td.get("augment"),
        )

    def loss(self, batch: dict[str, Any], keys: list[tuple[int, ...]], micro_step: int) -> torch.Tensor:
        frame_i = batch["frame_i"].to(self.device)
        frame_j = batch["frame_j"].to(self.device)
        pose = batch["pose_j"].to(self.device)
        # one dropout draw per local batch (reference collate_fn)
        r = float(self.cfg.get("dropout_rate") or 0.0)
        p = keyed_uniform((int(self.cfg["seed"]), micro_step, self.rank), SALT_DROP)
        if r > 0 and p <= r:
            if p <= r / 3:
                pose = torch.zeros_like(pose)
            elif p <= 2 * r / 3:
                frame_i = torch.zeros_like(frame_i)
            else:
                pose, frame_i = torch.zeros_like(pose), torch.zeros_like(frame_i)
        target_img = frame_i if (self.name == "dreampose-subject" and not self.cfg.get("fix_subject_target")) else frame_j
        if self.name == "dreampose-subject" and not self.cfg.get("fix_subject_target"):
            target_img = batch["frame_i"].to(self.device)  # the reference's target is the undropped frame_i
        latents = self._sample_latent(target_img, keys, SALT_VAE).float()
        b, c, h, w = latents.shape
        noise = keyed_randn(keys, SALT_NOISE, (c, h, w), self.device)
        t = keyed_randint(keys, SALT_T, self.noise_scheduler.config.num_train_timesteps, self.device).long()
        noisy = self.noise_scheduler.add_noise(latents, noise, t)
        pose_lat = F.interpolate(pose.float(), size=(h, w), mode="nearest")
        with torch.no_grad():
            pix = self.processor(
                images=_to_uint8(frame_i, self.cfg.get("image_range", "0_1")), do_rescale=True, return_tensors="pt"
            ).pixel_values
            clip = self.image_encoder(pixel_values=pix.to(self.device, dtype=self.image_encoder.dtype)).last_hidden_state
            vae_c = self._sample_latent(frame_i, keys, SALT_VAE_COND)
        ctx = self.adapter_p(clip.float(), vae_c.float())
        pred = self.unet_p(torch.cat([noisy, pose_lat], dim=1), t, ctx).sample
        target = (
            self.noise_scheduler.get_velocity(latents, noise, t) if self.noise_scheduler.config.prediction_type == "v_prediction" else noise
        )
        return F.mse_loss(pred.float(), target.float(), reduction="mean")

    def export(self, out_dir: Path, step: int, epoch: int) -> list[Path]:
        """Reference layout ``release/{unet_epoch_N.pth, adapter_N.pth, checkpoint-N/, clip/}`` + ``posevid/`` (ours)."""
        from posevid.models.dreampose import DreamPoseComponents, save_dreampose
        from posevid.utils.outputs import atomic_path

        release = self._release_dir(out_dir)
        release.mkdir(parents=True, exist_ok=True)
        for pattern in ("unet_epoch_*.pth", "adapter_*.pth"):
            for old in release.glob(pattern):
                old.unlink()  # one epoch per release folder, so loaders need no --epoch
        with atomic_path(release / f"unet_epoch_{epoch}.pth") as tmp:
            torch.save({k: v.detach().float().cpu().contiguous() for k, v in self.unet.state_dict().items()}, tmp)
        with atomic_path(release / f"adapter_{epoch}.pth") as tmp:
            torch.save({k: v.detach().float().cpu().contiguous() for k, v in self.adapter.state_dict().items()}, tmp)
        self._save_reference_vae_folder(release / f"checkpoint-{epoch}")
        self._save_clip(release)
        ours = Path(out_dir) / "posevid"
        vae_dtype = self.vae.dtype
        self.vae.float()
        save_dreampose(DreamPoseComponents(self.unet, self.vae, self.adapter, self.image_encoder, self.processor, self.scheduler, {}), ours)
        self.vae.to(vae_dtype)
        from posevid.utils.outputs import write_sidecar

        write_sidecar(
            Path(out_dir) / "export.json", {"recipe": self.name, "step": step, "epoch": epoch, "config": self.cfg}, kind="training-export"
        )
        return [release, ours]

    def validate(self, out_dir: Path, step: int) -> list[Path]:
        return validate_dreampose(self, out_dir)


def validate_dreampose(recipe: _DreamPoseBase, out_dir: Path) -> list[Path]:
    """One frame: the first training image re-posed with its own DensePose (PNG in ``out_dir``)."""
    from PIL import Image

    from posevid.data.datasets import load_densepose
    from posevid.data.manifest import load_manifest
    from posevid.pipelines.dreampose import DreamPosePipeline

    vd = recipe.cfg.get("validation_data") or {}
    td = recipe.cfg["train_data"]
    manifest, entries, _ = load_manifest(td["data_dir"])
    e = entries[0]
    image = Image.open(manifest.resolve(e["image"])).convert("RGB")
    uv = load_densepose(manifest.resolve(e["densepose"]), int(td["height"]), int(td["width"])).clamp(0, 1) * 2 - 1
    pipe = DreamPosePipeline(recipe.vae, recipe.unet, recipe.adapter, recipe.image_encoder, recipe.processor, recipe.scheduler)
    states = [m.training for m in (recipe.unet, recipe.adapter)]
    recipe.unet.eval()
    recipe.adapter.eval()
    try:
        out = pipe(
            image,
            [uv.repeat(5, 1, 1)[None]],
            s1=float(vd.get("s1", 8.0)),
            s2=float(vd.get("s2", 3.0)),
            num_inference_steps=int(vd.get("num_inference_steps", 20)),
            seed=int(recipe.cfg["seed"]),
            show_progress=False,
        )
    finally:
        recipe.unet.train(states[0])
        recipe.adapter.train(states[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = out.frames
    path = out_dir / "pred_#0.png"
    Image.fromarray(np.asarray(frames[0])).save(path)
    return [path]


# ================================================================================================
class DreamPoseVAERecipe(_DreamPoseBase):
    name = "dreampose-vae"

    def setup(self, accelerator, weight_dtype: torch.dtype) -> None:
        self._load_models(accelerator)
        self.vae.to(self.device).requires_grad_(False)
        for name, p in self.vae.named_parameters():
            if "decoder" in name:  # decoder.* only: post_quant_conv stays frozen, as in the reference
                p.requires_grad_(True)
        self.vae.train()
        if self.cfg.get("gradient_checkpointing"):
            self.vae.enable_gradient_checkpointing()
        self.vae_p = self.vae
        for m in (self.unet, self.image_encoder, self.adapter):
            m.requires_grad_(False)

    def trainable_modules(self) -> list[nn.Module]:
        return [self.vae]

    def set_prepared(self, modules: list[nn.Module]) -> None:
        self.vae_p = modules[0]

    def clip_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.vae.parameters() if p.requires_grad]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.vae.named_parameters() if p.requires_grad}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        own = dict(self.vae.named_parameters())
        with torch.no_grad():
            for k, v in state.items():
                if k not in own:
                    raise InputError(f"VAE checkpoint key {k} does not fit this VAE", hint="resume with the same base model")
                own[k].copy_(v)

    def dataset(self):
        from posevid.data.datasets import DreamPoseFrameDataset

        td = self.cfg["train_data"]
        return DreamPoseFrameDataset(
            td["data_dir"], mode="vae", height=int(td["height"]), width=int(td["width"]), augment=td.get("augment")
        )

    def loss(self, batch: dict[str, Any], keys: list[tuple[int, ...]], micro_step: int) -> torch.Tensor:
        x = batch["frame_j"].to(self.device)  # [0, 1], as the reference
        module = self.vae_p.module if hasattr(self.vae_p, "module") else self.vae_p
        with torch.no_grad():
            dist = module.encode(x).latent_dist
            z = dist.mean + dist.std * keyed_randn(keys, SALT_VAE, tuple(dist.mean.shape[1:]), self.device, dist.mean.dtype)
        rec = module.decode(z).sample  # the reference scales by 0.18215 and unscales: identity
        return F.mse_loss(rec.clamp(-1, 1).float(), x.clamp(-1, 1).float(), reduction="mean")

    def export(self, out_dir: Path, step: int, epoch: int) -> list[Path]:
        """``release/vae_N.pth`` (legacy attention names: loads into the reference ``--custom_vae``) and ``posevid/vae/``."""
        from posevid.models.convert import vae_current_to_legacy_attention
        from posevid.utils.outputs import atomic_path

        release = self._release_dir(out_dir)
        release.mkdir(parents=True, exist_ok=True)
        for old in release.glob("vae_*.pth"):
            old.unlink()
        state = vae_current_to_legacy_attention({k: v.detach().float().cpu().contiguous() for k, v in self.vae.state_dict().items()})
        path = release / f"vae_{epoch}.pth"
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        ours = Path(out_dir) / "posevid" / "vae"
        self.vae.save_pretrained(ours, safe_serialization=True)
        from posevid.utils.outputs import write_sidecar

        write_sidecar(
            Path(out_dir) / "export.json", {"recipe": self.name, "step": step, "epoch": epoch, "config": self.cfg}, kind="training-export"
        )
        return [path, ours]
