"""DensePose R-CNN frames per second, full-size architecture (random weights) or given weights.

    python benchmarks/densepose_speed.py [--sizes 800 512] [--frames 3] [--batch-size 1] [--device cpu|cuda] [--dtype fp32]
                                         [--weights model_final_162be9.pkl]

Without --weights the model is built from the real checkpoint's tensor names and shapes
(``benchmarks/densepose_r50_fpn_s1x_keys.json``, a copy of the spec file) with
random weights: the cost is the real model's, only the detections are meaningless (the box classifier is
biased to "person" so detections survive the score threshold). The DensePose head runs on
the chosen person only, as ``posevid densepose`` does. Numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
KEYS = [ROOT / "benchmarks" / "densepose_r50_fpn_s1x_keys.json", ROOT.parent.parent / "shared" / "spec" / "densepose_r50_fpn_s1x_keys.json"]
FRAME = ROOT / "tests" / "fixtures" / "densepose_tiny" / "image0.png"


def random_full_size_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """The real checkpoint's 335 tensors with random values of sensible scale (FrozenBN = identity)."""
    path = next((p for p in KEYS if p.is_file()), None)
    if path is None:
        raise SystemExit("densepose_r50_fpn_s1x_keys.json not found; pass --weights")
    shapes = json.loads(path.read_text())["keys"]
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in shapes.items():
        if name.endswith(("running_mean", "bias")):
            t = torch.zeros(shape)
        elif name.endswith("running_var") or (name.endswith("norm.weight")):
            t = torch.ones(shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            t = torch.randn(shape, generator=g) * (1.0 / fan_in) ** 0.5
        state[name] = t
    state["roi_heads.box_predictor.cls_score.weight"].zero_()  # every proposal is a "person" (score 0.98),
    state["roi_heads.box_predictor.cls_score.bias"][0] = 4.0  # so the NMS and the DensePose head have work to do
    return state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="a real .pkl/.safetensors (default: full-size random weights)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[800, 512], help="short sides to measure (800 = the reference)")
    ap.add_argument("--frames", type=int, default=3, help="timed frames per size (after one warm-up batch)")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=("fp32", "fp16", "bf16"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from PIL import Image

    from posevid.densepose.extract import PersonChooser
    from posevid.densepose.model import DensePoseRCNN
    from posevid.densepose.options import DensePoseOptions
    from posevid.densepose.predictor import DensePosePredictor
    from posevid.densepose.weights import load_weights_file

    state = load_weights_file(args.weights) if args.weights else random_full_size_state()
    model = DensePoseRCNN.from_state_dict(state, source=args.weights or "random full-size weights")
    base = DensePosePredictor(model, device=args.device, dtype=args.dtype)
    frame = np.asarray(Image.open(FRAME).convert("RGB"))  # 576x720, the DreamPose demo key frame
    frames = [frame] * args.batch_size
    print(f"DensePose R-CNN R50-FPN, {'weights ' + args.weights if args.weights else 'full-size random weights'}, "
          f"device {base.device}, {args.dtype}, batch {args.batch_size}, {args.threads} threads, frame {frame.shape[1]}x{frame.shape[0]}")

    def sync():
        if base.device.type == "cuda":
            torch.cuda.synchronize()

    for short in args.sizes:
        pred = base.with_config(DensePoseOptions(short_side=short).model_config(base.cfg))  # as the command runs it
        chooser = PersonChooser("top-score")
        pred(frames, choose=chooser)  # warm-up
        sync()
        n_batches = max(1, args.frames // args.batch_size)
        t = time.perf_counter()
        dets = 0
        for _ in range(n_batches):
            dets += sum(len(r) for r in pred(frames, choose=chooser))
        sync()
        dt = time.perf_counter() - t
        n = n_batches * args.batch_size
        load = Path("/proc/loadavg").read_text().split()[:3] if os.path.exists("/proc/loadavg") else ["?"]
        print(f"short side {short}: {n / dt:.3f} frames/s ({dt / n:.2f} s/frame, {dets / n:.0f} detections/frame), "
              f"load average {' '.join(load)}")


if __name__ == "__main__":
    main()
