"""Shared helpers for the benchmark scripts: full-size random models (SD-1.4 shapes, no download), timing,
memory and output formatting. Benchmarks print numbers; they are not tests."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

# SD-1.4 UNet config (spec: followyourpose.md a.1) as FollowYourPoseUNet kwargs.
SD14_UNET: dict[str, Any] = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    attention_head_dim=8, cross_attention_dim=768, norm_num_groups=32, norm_eps=1e-5, act_fn="silu",
    flip_sin_to_cos=True, freq_shift=0, downsample_padding=1, temporal_conv_rank=160,
)  # fmt: skip
SD14_VAE: dict[str, Any] = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32,
    sample_size=512, act_fn="silu",
)  # fmt: skip
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def full_size_unet(dtype: torch.dtype, device: str, seed: int = 0):
    """Random full-size Follow-Your-Pose UNet (998 M params); ``conv_temporal.up`` made non-zero so it does work."""
    from posevid.models.fyp_unet import FollowYourPoseUNet

    torch.manual_seed(seed)
    unet = FollowYourPoseUNet(**SD14_UNET).eval()
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if name.endswith("conv_temporal.up.weight"):
                p.normal_(0.0, 0.02)
    return unet.to(device=device, dtype=dtype)


def full_size_pipeline(dtype: torch.dtype, device: str, seed: int = 0):
    """Random full-size FYP pipeline: SD-1.4-shaped UNet, VAE and CLIP ViT-L/14 text encoder (byte tokenizer)."""
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel

    from posevid.models.tiny import tiny_clip_tokenizer
    from posevid.pipelines.followyourpose import FollowYourPosePipeline

    unet = full_size_unet(dtype, device, seed)
    vae = AutoencoderKL(**SD14_VAE).eval()
    tok = tiny_clip_tokenizer()
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
            max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        )
    ).eval()  # fmt: skip
    sched = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        set_alpha_to_one=False, steps_offset=1, clip_sample=False,
    )  # fmt: skip
    vae_dtype = torch.float32 if dtype == torch.float16 else dtype  # SD's VAE overflows in fp16
    pipe = FollowYourPosePipeline(
        vae=vae.to(device, vae_dtype), text_encoder=text.to(device, dtype), tokenizer=tok, unet=unet, scheduler=sched
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str, repeats: int, warmup: int, cpu_times: list[float] | None = None) -> list[float]:
    """Wall seconds per call; ``cpu_times`` (if given) receives the process CPU seconds per call, which other
    processes on a shared machine disturb much less than wall time."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
        if cpu_times is not None:
            cpu_times.append(time.process_time() - c0)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name()
    model = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def report(rows: list[dict[str, Any]], columns: list[str], json_path: str | None) -> None:
    """JSON lines on stdout (or into ``json_path``) and a Markdown table on stderr; adds the 1-minute load average."""
    for r in rows:
        r.setdefault("load_avg_1min", round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None)
    text = "\n".join(json.dumps(r) for r in rows)
    if json_path:
        with open(json_path, "a") as fh:
            fh.write(text + "\n")
    print(text)
    head = "| " + " | ".join(columns) + " |"
    lines = [head, "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |")
    print("\n".join(lines), file=sys.stderr)
