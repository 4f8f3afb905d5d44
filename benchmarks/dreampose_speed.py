"""Print DreamPose seconds per frame and per UNet call on the tiny random release (or --model DIR).

    python benchmarks/dreampose_speed.py [--model DIR --epoch N] [--frames 3] [--steps 4] [--device cpu]

Numbers only; nothing is asserted. The tiny model measures the pipeline's own overhead (conditioning, VAE,
scheduler); a real release measures the UNet (640x512, batch 3, 101 calls per frame at 100 PNDM steps).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="release or posevid folder (default: a fresh tiny random release)")
    ap.add_argument("--epoch", type=int)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from posevid.models.tiny_dreampose import write_tiny_dreampose
    from posevid.pipelines.dreampose import DreamPosePipeline

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or write_tiny_dreampose(Path(tmp) / "tiny")
        t = time.perf_counter()
        pipe = DreamPosePipeline.from_pretrained(model, epoch=args.epoch, device=args.device)
        load_s = time.perf_counter() - t
        h, w = pipe.image_size
        image = (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
        poses = [torch.rand(1, 10, h, w) * 2 - 1 for _ in range(args.frames)]
        calls = [0]
        forward = pipe.unet.forward

        def counted(*a, **k):
            calls[0] += 1
            return forward(*a, **k)

        pipe.unet.forward = counted
        t = time.perf_counter()
        pipe(image, poses, num_inference_steps=args.steps, show_progress=False)
        gen_s = time.perf_counter() - t
    print(f"model={model if args.model else 'tiny'} size={w}x{h} device={args.device} threads={args.threads}")
    print(f"load_s={load_s:.2f} frames={args.frames} steps={args.steps} unet_calls={calls[0]}")
    print(f"generate_s={gen_s:.2f} s_per_frame={gen_s / args.frames:.3f} s_per_unet_call={gen_s / max(1, calls[0]):.3f}")


if __name__ == "__main__":
    main()
