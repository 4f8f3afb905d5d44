"""A tiny random DreamPose release in the reference layout, for tests, demos and the web app offline.

Layout (same file names as the reference ``demo/custom-chkpts``)::

    unet_epoch_499.pth          UNet state dict (14-channel conv_in), keys prefixed 'module.' like a DDP save
    adapter_499.pth             embedding adapter state dict (the real 1280/768/54/50 sizes)
    vae_1499.pth                "finetuned" VAE with diffusers <= 0.13 attention names (query/key/value/proj_attn)
    checkpoint-499/             diffusers pipeline folder: model_index.json, vae/ (old names, .bin), scheduler/,
                                unet/config.json (stale in_channels 4, as the reference writes it)
    clip/                       tiny CLIP vision model (transformers-4 'vision_model.' keys) + preprocessor config
    poses/                      a few synthetic frame_N_densepose.npy UV maps, so 'animate' can be tried at once

The adapter couples sizes (1280 = (H/s/2) * (W/s/2)), so the tiny VAE has scale factor s = 2 and the images
are 128x160 (WxH), like the golden fixtures. The tiny UNet keeps cross-attention only at the 40x32 level
so a CPU step stays well under a second. Every weight is random: outputs are noise, only the plumbing is real.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from posevid.models import TINY_SEED

TINY_EPOCH = 499
TINY_VAE_EPOCH = 1499

TINY_UNET_CONFIG = {
    "act_fn": "silu",
    "attention_head_dim": 4,
    "block_out_channels": [16, 32],
    "cross_attention_dim": 768,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 32,
}
TINY_VAE_CONFIG = {
    "block_out_channels": [16, 32],
    "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 64,
}
SD14_SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}
CLIP_PROCESSOR_CONFIG = {
    "crop_size": {"height": 28, "width": 28},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_processor_type": "CLIPImageProcessor",
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "rescale_factor": 1 / 255,
    "size": {"shortest_edge": 28},
}


def write_tiny_dreampose(out_dir: str | os.PathLike, seed: int = TINY_SEED) -> Path:
    """Write the tiny release described in the module doc into ``out_dir`` and return it."""
    from diffusers import AutoencoderKL
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from posevid.models.convert import clip_vision_add_prefix, vae_current_to_legacy_attention
    from posevid.models.dreampose import EmbeddingAdapter, build_dreampose_unet

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    unet = build_dreampose_unet(TINY_UNET_CONFIG)
    with torch.no_grad():  # random pose channels, so the pose visibly matters even untrained
        unet.conv_in.weight[:, 4:].normal_(0, 0.05)
    adapter = EmbeddingAdapter()
    vae = AutoencoderKL(**TINY_VAE_CONFIG)
    vae_finetuned = AutoencoderKL(**TINY_VAE_CONFIG)
    clip_config = CLIPVisionConfig(
        hidden_size=768, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=4, projection_dim=512
    )
    clip = CLIPVisionModel(clip_config)

    torch.save({f"module.{k}": v.contiguous() for k, v in unet.state_dict().items()}, out / f"unet_epoch_{TINY_EPOCH}.pth")
    torch.save({k: v.contiguous() for k, v in adapter.state_dict().items()}, out / f"adapter_{TINY_EPOCH}.pth")
    vae_state = {k: v.contiguous() for k, v in vae_finetuned.state_dict().items()}
    torch.save(vae_current_to_legacy_attention(vae_state), out / f"vae_{TINY_VAE_EPOCH}.pth")

    ckpt = out / f"checkpoint-{TINY_EPOCH}"
    for sub in ("unet", "vae", "scheduler"):
        (ckpt / sub).mkdir(parents=True, exist_ok=True)
    _json(ckpt / "model_index.json", {"_class_name": "StableDiffusionImg2ImgPipeline", "_diffusers_version": "0.12.1"})
    _json(ckpt / "unet" / "config.json", {"_class_name": "UNet2DConditionModel", **TINY_UNET_CONFIG})  # stale in_channels 4
    _json(ckpt / "vae" / "config.json", {"_class_name": "AutoencoderKL", "_diffusers_version": "0.12.1", **TINY_VAE_CONFIG})
    torch.save(vae_current_to_legacy_attention(vae.state_dict()), ckpt / "vae" / "diffusion_pytorch_model.bin")
    _json(ckpt / "scheduler" / "scheduler_config.json", SD14_SCHEDULER_CONFIG)

    clip_dir = out / "clip"
    clip_dir.mkdir(exist_ok=True)
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in clip.state_dict().items() if not k.endswith("position_ids")}
    save_file(clip_vision_add_prefix(state), str(clip_dir / "model.safetensors"), metadata={"format": "pt"})
    _json(clip_dir / "config.json", {**clip_config.to_dict(), "architectures": ["CLIPVisionModel"], "model_type": "clip_vision_model"})
    _json(clip_dir / "preprocessor_config.json", CLIP_PROCESSOR_CONFIG)
    write_sample_densepose(out / "poses")
    info = {"kind": "dreampose", "seed": seed, "epoch": TINY_EPOCH, "vae_epoch": TINY_VAE_EPOCH, "image_wh": [128, 160]}
    _json(out / "posevid_tiny.json", info)
    return out


def write_sample_densepose(folder: Path, frames: int = 4, size: tuple[int, int] = (160, 128)) -> Path:
    """Reference-format ``frame_N_densepose.npy`` (2, H, W) UV maps of a swaying ellipse 'body' (U, V in (0, 1], 0 outside)."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for n in range(frames):
        body = ((yy - h / 2) / (0.42 * h)) ** 2 + ((xx - w / 2 - 0.06 * w * np.sin(n)) / (0.22 * w)) ** 2 <= 1
        uv = np.zeros((2, h, w), np.float32)
        uv[0][body] = np.clip(yy[body] / h, 0.01, 1)
        uv[1][body] = np.clip(xx[body] / w, 0.01, 1)
        np.save(folder / f"frame_{n}_densepose.npy", uv)
    return folder


def tiny_example_command(model: str | os.PathLike) -> str:
    """An ``animate`` run on the tiny model and its sample poses that finishes in seconds (from a repo checkout)."""
    return f"posevid animate --model {model} --image examples/key_frame.png --densepose {Path(model) / 'poses'} --steps 2 --out smoke.mp4"


def _json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


__all__ = ["TINY_EPOCH", "TINY_VAE_EPOCH", "tiny_example_command", "write_sample_densepose", "write_tiny_dreampose"]
