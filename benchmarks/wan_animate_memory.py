"""Time and peak GPU memory of Wan2.2-Animate-14B per posevid memory profile, at 480p and 720p, with random weights.

    python benchmarks/wan_animate_memory.py                      # every profile, 480p and 720p, 77 frames, 2 steps
    python benchmarks/wan_animate_memory.py --profiles none,fp8-group-offload --sizes 720p --steps 4 --json wan.json
    python benchmarks/wan_animate_memory.py --dry-run            # any machine: build the configs on the meta device

A benchmark, not a test: it prints numbers and asserts nothing. It needs a CUDA GPU (about 50 GB of GPU memory
to build the model; the offload profiles then keep it in CPU memory, about 50 GB of RAM); without one it says so
in one line. Nothing is downloaded: the full-size architecture is built with random weights directly on the GPU
in bf16, then run through posevid's :func:`posevid.pipelines.wan_animate.generate` (diffusers' WanAnimatePipeline)
after :func:`~posevid.pipelines.wan_animate.apply_memory_profile`. Random weights cost the same time and memory as
the real ones. Each (profile, size) runs in its own subprocess, so peaks and offload hooks never carry over.

Reported per run: seconds to build and configure, seconds from the call to the end of the first step (encoders
included), seconds per denoising step (median after the first), total
seconds of the call (text and image encoding, VAE encode of the conditions, the steps, VAE decode), peak GPU
memory allocated during the call (``torch.cuda.max_memory_allocated``), GPU memory held by weights before the
call, peak RSS, and the diffusers calls the profile made. An out-of-memory run is reported as such.

Where the sizes come from (facts, not code):
* transformer: diffusers' ``scripts/convert_wan_to_diffusers.py``, model type ``Wan2.2-Animate-14B`` (the
  config written to the hub repo's ``transformer/config.json``), with ``WanAnimateTransformer3DModel``'s default
  motion-encoder channel sizes;
* VAE: ``AutoencoderKLWan``'s defaults, which are the Wan2.1 VAE the conversion script loads for Animate;
* text encoder: ``google/umt5-xxl``'s config (the conversion script loads it); its tokenizer is replaced by
  the tiny word-level one (token ids only, the sequence length stays 512);
* image encoder: the vision tower of ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K`` (``CLIPVisionModel``);
* scheduler: UniPC, flow prediction, shift 5 (the conversion script's choice for Animate).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

TRANSFORMER: dict[str, Any] = dict(
    patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=36, out_channels=16, text_dim=4096,
    freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
    image_dim=1280, added_kv_proj_dim=5120, rope_max_seq_len=1024, pos_embed_seq_len=None, motion_encoder_size=512,
    motion_style_dim=512, motion_dim=20, motion_encoder_dim=512, face_encoder_hidden_dim=1024, face_encoder_num_heads=4,
    inject_face_latents_blocks=5,
)  # fmt: skip
UMT5_XXL: dict[str, Any] = dict(
    vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64, relative_attention_num_buckets=32,
    relative_attention_max_distance=128, feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, pad_token_id=0, eos_token_id=1,
)  # fmt: skip
CLIP_VIT_H14: dict[str, Any] = dict(
    hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16, patch_size=14, image_size=224,
    projection_dim=1024, hidden_act="gelu", layer_norm_eps=1e-5,
)  # fmt: skip
SIZES = {"480p": (480, 832), "720p": (720, 1280)}  # (height, width): Wan's 832x480 and 1280x720


def build_components(device: str | torch.device, dtype: torch.dtype = torch.bfloat16, seed: int = 0) -> dict:
    """The seven WanAnimatePipeline components at full size, random, created on ``device`` in ``dtype`` (meta: no memory)."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanAnimateTransformer3DModel
    from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    from posevid.models.tiny_wan import SCHEDULER, tiny_wan_tokenizer
    from posevid.utils.progress import quiet_transformers

    with quiet_transformers():
        from transformers import CLIPImageProcessor

        image_processor = CLIPImageProcessor(size=224, crop_size=224)
    previous = torch.get_default_dtype()
    torch.manual_seed(seed)
    try:
        torch.set_default_dtype(dtype)  # parameters are born in bf16 on the GPU: no fp32 copy of 23 B parameters
        with torch.device(device):
            components = dict(
                transformer=WanAnimateTransformer3DModel(**TRANSFORMER).eval(),
                vae=AutoencoderKLWan().eval(),
                text_encoder=UMT5EncoderModel(UMT5Config(**UMT5_XXL)).eval(),
                image_encoder=CLIPVisionModel(CLIPVisionConfig(**CLIP_VIT_H14)).eval(),
            )
    finally:
        torch.set_default_dtype(previous)
    return dict(components, tokenizer=tiny_wan_tokenizer(), image_processor=image_processor, scheduler=UniPCMultistepScheduler(**SCHEDULER))


def parameter_report(components: dict) -> dict[str, dict[str, float]]:
    """Billions of parameters and GB in bf16 per model component."""
    out = {}
    for name, module in components.items():
        if isinstance(module, torch.nn.Module):
            n = sum(p.numel() for p in module.parameters())
            out[name] = {"params_b": round(n / 1e9, 3), "bf16_gb": round(2 * n / 1e9, 2)}
    return out


def run_one(profile: str, size: str, frames: int, steps: int, mode: str, seed: int) -> dict[str, Any]:
    """Build, configure and generate once on the GPU; the row of the report."""
    from diffusers import WanAnimatePipeline

    from posevid.pipelines import wan_animate as wan
    from posevid.pipelines.memory import peak_rss_bytes

    height, width = SIZES[size]
    row: dict[str, Any] = dict(profile=profile, size=size, height=height, width=width, frames=frames, steps=steps, mode=mode)
    t0 = time.perf_counter()
    pipe = WanAnimatePipeline(**build_components("cuda"))
    if wan.OFFLOAD_STEPS & set(wan.MEMORY_PROFILES[profile]):
        pipe.to("cpu")  # offload profiles start from CPU memory, as they do after loading the real weights
        torch.cuda.empty_cache()
    row["calls"] = wan.apply_memory_profile(pipe, profile, device="cuda", compute_dtype=torch.bfloat16)["calls"]
    torch.cuda.synchronize()
    row["setup_s"] = round(time.perf_counter() - t0, 1)
    row["weights_gpu_gb"] = round(torch.cuda.memory_allocated() / 1e9, 2)

    rng = np.random.default_rng(seed)
    video = lambda h, w: [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(frames)]  # noqa: E731
    inputs = dict(image=video(height, width)[0], pose_frames=video(height, width), face_frames=video(wan.FACE_SIZE, wan.FACE_SIZE))
    if mode == "replace":
        inputs.update(background_frames=video(height, width), mask_frames=[m[..., 0] for m in video(height, width)])
    stamps: list[float] = []

    def progress(stage: str, done: int, total: int) -> None:
        torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    torch.cuda.reset_peak_memory_stats()
    t1 = time.perf_counter()
    try:
        out = wan.generate(
            pipe, **inputs, mode=mode, prompt="a person dancing", num_inference_steps=steps, segment_frame_length=frames,
            seed=seed, progress=progress, show_progress=False, return_video=True,
        )  # fmt: skip
    except torch.cuda.OutOfMemoryError as exc:
        row.update(status="oom", error=str(exc).splitlines()[0][:200], peak_gpu_gb=round(torch.cuda.max_memory_allocated() / 1e9, 2))
        return row
    torch.cuda.synchronize()
    steps_s = np.diff([t1, *stamps])
    row.update(
        status="ok",
        total_s=round(time.perf_counter() - t1, 1),
        to_first_step_s=round(float(steps_s[0]), 2),  # includes text/image encoding and the VAE encode of the conditions
        step_s=round(float(np.median(steps_s[1:] if len(steps_s) > 1 else steps_s)), 2),
        peak_gpu_gb=round(torch.cuda.max_memory_allocated() / 1e9, 2),
        peak_rss_gb=round((peak_rss_bytes() or 0) / 1e9, 1),
        segments=out.plan.segments,
        finite=bool(np.isfinite(out.video).all()),
    )
    return row


def dry_run() -> dict[str, Any]:
    """Every component built on the meta device (no memory, seconds): checks the configs against diffusers' classes."""
    from posevid.pipelines import wan_animate as wan

    report = {"components": parameter_report(build_components("meta")), "profiles": dict(wan.MEMORY_PROFILES), "sizes": SIZES}
    report["total_params_b"] = round(sum(c["params_b"] for c in report["components"].values()), 2)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from posevid.pipelines.wan_animate import MEMORY_PROFILES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", default=",".join(MEMORY_PROFILES), help="comma-separated memory profiles (default: all)")
    ap.add_argument("--sizes", default="480p,720p", help=f"comma-separated, from {', '.join(SIZES)}")
    ap.add_argument("--frames", type=int, default=77, help="frames (one segment of this length; 4k+1)")
    ap.add_argument("--steps", type=int, default=2, help="denoising steps (time per step is reported; the release uses 20)")
    ap.add_argument("--mode", choices=("animate", "replace"), default="animate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per (profile, size) run")
    ap.add_argument("--json", help="append the result rows (JSON lines) to this file")
    ap.add_argument("--dry-run", action="store_true", help="build the configs on the meta device and print parameter counts")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one (profile, size) in this process
    args = ap.parse_args(argv)
    args.profiles = [p for p in args.profiles.split(",") if p]
    args.sizes = [s for s in args.sizes.split(",") if s]
    unknown = [p for p in args.profiles if p not in MEMORY_PROFILES] + [s for s in args.sizes if s not in SIZES]
    if unknown:
        ap.error(f"unknown profile or size: {', '.join(unknown)}")
    if args.frames % 4 != 1 or args.frames < 5:
        ap.error(f"--frames must be 4k+1 and at least 5, got {args.frames}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        print(json.dumps(dry_run(), indent=2))
        return 0
    if not torch.cuda.is_available():
        print("wan_animate_memory.py: needs a CUDA GPU and none is available (--dry-run checks the configs anywhere)", file=sys.stderr)
        return 2
    if args.worker:
        print("ROW " + json.dumps(run_one(args.profiles[0], args.sizes[0], args.frames, args.steps, args.mode, args.seed)), flush=True)
        return 0

    from _common import machine, report

    rows = []
    for size in args.sizes:
        for profile in args.profiles:
            cmd = [sys.executable, __file__, "--worker", "--profiles", profile, "--sizes", size, "--frames", str(args.frames),
                   "--steps", str(args.steps), "--mode", args.mode, "--seed", str(args.seed)]  # fmt: skip
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=dict(os.environ))
                found = [line[4:] for line in proc.stdout.splitlines() if line.startswith("ROW ")]
                last_error = (proc.stderr.strip().splitlines() or ["?"])[-1][:300]
                row = json.loads(found[-1]) if found else {"status": "failed", "error": last_error}
            except subprocess.TimeoutExpired:
                row = {"status": "timeout"}
            row.update(profile=profile, size=size, device=machine("cuda"), torch=torch.__version__)
            rows.append(row)
            print(f"{size} {profile}: {row.get('status')} step {row.get('step_s')} s, peak {row.get('peak_gpu_gb')} GB", file=sys.stderr)
    columns = ["size", "profile", "status", "setup_s", "to_first_step_s", "step_s", "total_s"]
    columns += ["weights_gpu_gb", "peak_gpu_gb", "peak_rss_gb"]
    report(rows, columns, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
