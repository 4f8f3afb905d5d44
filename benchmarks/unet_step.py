"""One denoising step of the FULL-SIZE Follow-Your-Pose video UNet (SD-1.4 shapes, random weights).

Times the UNet forward exactly as the pipeline calls it (pose features precomputed once per video, CFG
batch of 2 or split into two calls), median over ``--repeats`` after ``--warmup``, and the peak memory of
the timed part (CPU: VmHWM of this process; CUDA: ``max_memory_allocated``).

    python benchmarks/unet_step.py --frames 8 --resolution 256 --dtype fp32 --attention sdpa
    python benchmarks/unet_step.py --device cuda --dtype fp16 --frames 24 --resolution 512 --compile

Prints one JSON line per run and a Markdown table row (stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DTYPES, full_size_unet, machine, median, report, timed  # noqa: E402

from posevid.models.attention_fast import configure_attention  # noqa: E402
from posevid.pipelines.memory import peak_memory, reset_peak  # noqa: E402
from posevid.pipelines.windowing import predict_noise  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=8, help="frames per clip")
    p.add_argument("--resolution", type=int, default=256, help="output pixels (latents are 1/8)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="fp32", help="UNet weights and activations")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--attention", choices=("sdpa", "chunked", "math"), default="sdpa", help="attention back-end")
    p.add_argument("--attention-chunk", type=int, default=None, help="queries per chunk (chunked/math)")
    p.add_argument("--batch", type=int, default=2, help="UNet batch: 2 = uncond + cond (CFG), 1 = no CFG")
    p.add_argument("--split-cfg", action="store_true", help="run the CFG branches as two batch-1 calls")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    p.add_argument("--compile", action="store_true", help="torch.compile the UNet (compile time reported apart)")
    p.add_argument("--repeats", type=int, default=3, help="timed forwards")
    p.add_argument("--warmup", type=int, default=1, help="untimed forwards first")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    p.add_argument("--json", default=None, help="append the JSON result to this file")
    p.add_argument(
        "--variants",
        default=None,
        help="compare variants in ONE process, interleaved round by round (robust to a busy machine): "
        "comma list of sdpa, chunked, math, channels_last, split_cfg",
    )
    args = p.parse_args(argv)
    if args.variants:
        return compare_variants(args)

    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]
    t0 = time.perf_counter()
    unet = full_size_unet(dtype, args.device)
    build_s = time.perf_counter() - t0
    configure_attention(unet, args.attention, args.attention_chunk)
    if args.channels_last:
        unet.to(memory_format=torch.channels_last)

    f, lat = args.frames, args.resolution // 8
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 4, f, lat, lat, generator=gen).to(args.device, dtype)
    text = torch.randn(args.batch, 77, 768, generator=gen).to(args.device, dtype)
    pose = torch.rand(1, f, 3, args.resolution, args.resolution, generator=gen).to(args.device, dtype)
    with torch.no_grad():
        feats = [feat.expand(args.batch, *feat.shape[1:]) for feat in unet.encode_pose(pose)]
    compile_s = None
    if args.compile:
        unet.compile(dynamic=False, mode="max-autotune-no-cudagraphs" if args.device.startswith("cuda") else None)

    def step() -> None:
        with torch.no_grad():
            predict_noise(unet, x, 500, text, feats, branches=args.batch, split_cfg=args.split_cfg)

    if args.compile:
        t0 = time.perf_counter()
        step()
        compile_s = round(time.perf_counter() - t0, 2)
    reset_peak(args.device)
    cpu: list[float] = []
    times = timed(step, args.device, args.repeats, args.warmup, cpu)
    mem = peak_memory(args.device)
    row = {
        "bench": "unet_step",
        "machine": machine(args.device),
        "device": args.device,
        "dtype": args.dtype,
        "frames": f,
        "resolution": args.resolution,
        "batch": args.batch,
        "split_cfg": args.split_cfg,
        "attention": args.attention + (f"/{args.attention_chunk}" if args.attention_chunk else ""),
        "channels_last": args.channels_last,
        "compile": args.compile,
        "median_s": round(median(times), 3),
        "min_s": round(min(times), 3),
        "cpu_median_s": round(median(cpu), 3),  # process CPU time (all threads)
        "times_s": [round(t, 3) for t in times],
        "build_s": round(build_s, 1),
        "compile_s": compile_s,
        **mem,
        "torch": torch.__version__,
    }
    cols = [
        "device",
        "dtype",
        "frames",
        "resolution",
        "batch",
        "split_cfg",
        "attention",
        "channels_last",
        "compile",
        "median_s",
        "peak_rss_mb",
        "peak_cuda_mb",
    ]
    report([row], cols, args.json)
    return 0


def compare_variants(args) -> int:
    """Build the UNet once; per round run every variant once; report min/median wall and CPU per variant."""
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unet = full_size_unet(DTYPES[args.dtype], args.device)
    f, lat = args.frames, args.resolution // 8
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 4, f, lat, lat, generator=gen).to(args.device, DTYPES[args.dtype])
    text = torch.randn(args.batch, 77, 768, generator=gen).to(args.device, DTYPES[args.dtype])
    pose = torch.rand(1, f, 3, args.resolution, args.resolution, generator=gen).to(args.device, DTYPES[args.dtype])
    with torch.no_grad():
        feats = [feat.expand(args.batch, *feat.shape[1:]) for feat in unet.encode_pose(pose)]

    def run(name: str) -> None:
        configure_attention(unet, name if name in ("sdpa", "chunked", "math") else "sdpa", 1024 if name in ("chunked", "math") else None)
        fmt = torch.channels_last if name == "channels_last" else torch.contiguous_format
        unet.to(memory_format=fmt)
        with torch.no_grad():
            predict_noise(unet, x, 500, text, feats, branches=args.batch, split_cfg=name == "split_cfg")

    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    peak: dict[str, dict] = {}
    for _ in range(args.warmup):
        run(names[0])
    for _ in range(args.repeats):
        for name in names:
            reset_peak(args.device)
            c: list[float] = []
            wall[name] += timed(lambda n=name: run(n), args.device, 1, 0, c)
            cpu[name] += c
            peak[name] = peak_memory(args.device)
    rows = []
    for name in names:
        rows.append({
            "bench": "unet_step_variants", "machine": machine(args.device), "device": args.device, "dtype": args.dtype,
            "frames": f, "resolution": args.resolution, "batch": args.batch, "variant": name,
            "min_s": round(min(wall[name]), 2), "median_s": round(median(wall[name]), 2),
            "cpu_min_s": round(min(cpu[name]), 2), "times_s": [round(t, 2) for t in wall[name]],
            **peak[name], "torch": torch.__version__,
        })  # fmt: skip
    report(
        rows,
        ["variant", "dtype", "frames", "resolution", "batch", "min_s", "median_s", "cpu_min_s", "peak_rss_mb", "load_avg_1min"],
        args.json,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
