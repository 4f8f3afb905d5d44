"""End-to-end Follow-Your-Pose generation on a FULL-SIZE random model (SD-1.4 shapes, no download).

Per-stage wall time of the real pipeline call: text encoding, pose (read + resize + pose encoder),
denoising (all steps) and VAE decoding, plus the peak memory of the whole call. ``--window`` runs the
long-video path (:func:`posevid.pipelines.windowing.generate_long`: streamed pose, windowed denoising,
streamed decode into an mp4).

    python benchmarks/generate.py --frames 8 --resolution 256 --steps 2
    python benchmarks/generate.py --device cuda --dtype fp16 --frames 24 --resolution 512 --steps 20 --scheduler dpm++
    python benchmarks/generate.py --frames 48 --window 24 --overlap 8 --resolution 256 --steps 2

The skeleton video defaults to ``examples/dance_skeleton.mp4``. One JSON line and a Markdown row (stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DTYPES, full_size_pipeline, machine, report, sync  # noqa: E402

from posevid.pipelines.memory import RunOptions, apply_run_options, peak_memory, reset_peak  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class StageTimer:
    """Accumulates wall time spent inside selected callables (wrapped in place, restored by ``close``)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}
        self._undo: list = []

    def wrap(self, obj, attr: str, stage: str) -> None:
        original = getattr(obj, attr)

        def wrapper(*a, **k):
            sync(self.device)
            t0 = time.perf_counter()
            out = original(*a, **k)
            sync(self.device)
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0
            return out

        setattr(obj, attr, wrapper)
        self._undo.append((obj, attr, original))

    def close(self) -> None:
        for obj, attr, original in reversed(self._undo):
            setattr(obj, attr, original)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=8, help="frames to generate")
    p.add_argument("--resolution", type=int, default=256, help="output size (square, multiple of 64)")
    p.add_argument("--steps", type=int, default=2, help="denoising steps (per-step time is reported too)")
    p.add_argument("--scheduler", default="ddim", help="ddim, dpm++, unipc, euler, pndm")
    p.add_argument("--guidance", type=float, default=12.5, help="CFG scale (> 1: batch of 2)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="fp32", help="weights precision (VAE fp32 under fp16)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--pose", default=str(ROOT / "examples" / "dance_skeleton.mp4"), help="skeleton video")
    p.add_argument("--stride", type=int, default=1, help="skeleton frame stride")
    p.add_argument("--attention", choices=("sdpa", "chunked", "math"), default="sdpa", help="attention back-end")
    p.add_argument("--split-cfg", action="store_true", help="CFG branches as two calls")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    p.add_argument("--vae-tiling", action="store_true", help="tiled VAE decode")
    p.add_argument("--decode-chunk", type=int, default=1, help="frames per VAE decode call")
    p.add_argument("--window", type=int, default=None, help="windowed long-video path with this window")
    p.add_argument("--overlap", type=int, default=8, help="window overlap")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    p.add_argument("--json", default=None, help="append the JSON result to this file")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]
    t0 = time.perf_counter()
    pipe = full_size_pipeline(dtype, args.device)
    build_s = time.perf_counter() - t0
    apply_run_options(
        pipe,
        RunOptions(attention=args.attention, channels_last=args.channels_last, vae_tiling=args.vae_tiling, split_cfg=args.split_cfg),
        device=args.device,
    )
    timer = StageTimer(args.device)
    timer.wrap(pipe, "_encode_text", "text_s")
    timer.wrap(pipe.unet, "encode_pose", "pose_encoder_s")
    timer.wrap(pipe.vae, "decode", "decode_s")
    timer.wrap(pipe.unet, "forward", "denoise_s")  # every UNet call, windowed or not
    from posevid.pipelines import windowing

    reset_peak(args.device)
    t0 = time.perf_counter()
    common = dict(frame_stride=args.stride, height=args.resolution, width=args.resolution, num_inference_steps=args.steps)
    common.update(guidance_scale=args.guidance, seed=0, scheduler=args.scheduler)
    with tempfile.TemporaryDirectory() as tmp:
        if args.window:
            windowing.generate_long(
                pipe, "a dancer on the beach", args.pose, Path(tmp) / "out.mp4", video_length=args.frames, window=args.window,
                overlap=args.overlap, split_cfg=args.split_cfg, decode_chunk_size=args.decode_chunk, **common,
            )  # fmt: skip
        else:
            pipe("a dancer on the beach", args.pose, video_length=args.frames, decode_chunk_size=args.decode_chunk, **common)
    total_s = time.perf_counter() - t0
    timer.close()
    stages = {k: round(v, 2) for k, v in timer.seconds.items()}
    row = {
        "bench": "generate",
        "machine": machine(args.device),
        "device": args.device,
        "dtype": args.dtype,
        "frames": args.frames,
        "resolution": args.resolution,
        "steps": args.steps,
        "scheduler": args.scheduler,
        "attention": args.attention,
        "split_cfg": args.split_cfg,
        "window": f"{args.window}/{args.overlap}" if args.window else None,
        **stages,
        "denoise_per_step_s": round(timer.seconds.get("denoise_s", 0.0) / args.steps, 2),
        "other_s": round(total_s - sum(timer.seconds.values()), 2),  # pose reading/resizing, scheduler, mp4 writing
        "total_s": round(total_s, 2),
        "build_s": round(build_s, 1),
        **peak_memory(args.device),
        "torch": torch.__version__,
    }
    cols = ["device", "dtype", "frames", "resolution", "steps", "window", "text_s", "pose_encoder_s", "denoise_s"]
    cols += ["denoise_per_step_s", "decode_s", "other_s", "total_s", "peak_rss_mb", "peak_cuda_mb"]
    report([row], cols, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
