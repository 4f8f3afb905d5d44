"""Sparse-causal attention: posevid's SDPA processor vs a reference-style explicit implementation.

The reference builds the frame-0 + previous-frame key/value set by indexing, then computes the full
``(b*f*heads, d, 2d)`` score matrix with baddbmm + softmax. posevid gathers the same key/value set and calls
``F.scaled_dot_product_attention`` once (fused kernels never store the score matrix). This prints the max
difference, the time per call and the peak extra memory (CPU: tracemalloc cannot see torch allocations, so
the score-matrix size is reported instead; CUDA: ``max_memory_allocated``).

    python benchmarks/fyp_attention.py --frames 8 --tokens 1024 --channels 320 --heads 8
"""

from __future__ import annotations

import argparse
import time

import torch
from diffusers.models.attention_processor import Attention

from posevid.models.fyp_layers import SparseCausalAttnProcessor


def explicit_sparse_causal(attn: Attention, x: torch.Tensor, f: int) -> torch.Tensor:
    """Reference-style: materialised K/V copies and score matrix."""
    bf, d, c = x.shape
    b, h = bf // f, attn.heads
    q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
    prev = [0] + list(range(f - 1))
    k = k.view(b, f, d, -1)
    v = v.view(b, f, d, -1)
    k = torch.cat([k[:, [0] * f], k[:, prev]], dim=2).reshape(bf, 2 * d, -1)
    v = torch.cat([v[:, [0] * f], v[:, prev]], dim=2).reshape(bf, 2 * d, -1)
    split = lambda t: t.reshape(bf, t.shape[1], h, -1).transpose(1, 2).reshape(bf * h, t.shape[1], -1)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    scores = torch.baddbmm(torch.empty(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype, device=q.device), q, k.transpose(1, 2),
                           beta=0, alpha=attn.scale)  # fmt: skip
    out = torch.bmm(scores.softmax(dim=-1), v)
    out = out.reshape(bf, h, d, -1).transpose(1, 2).reshape(bf, d, -1)
    return attn.to_out[0](out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--tokens", type=int, default=1024, help="h*w of the latent at this block (SD 512px: 4096, 1024, 256, 64)")
    p.add_argument("--channels", type=int, default=320)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=("fp32", "fp16"), default="fp32")
    args = p.parse_args()
    dtype = {"fp32": torch.float32, "fp16": torch.float16}[args.dtype]
    torch.manual_seed(0)
    attn = Attention(query_dim=args.channels, heads=args.heads, dim_head=args.channels // args.heads).to(args.device, dtype).eval()
    x = torch.randn(args.frames, args.tokens, args.channels, device=args.device, dtype=dtype)
    proc = SparseCausalAttnProcessor()
    print(f"device={args.device} dtype={args.dtype} frames={args.frames} tokens={args.tokens} channels={args.channels} heads={args.heads}")
    with torch.no_grad():
        a = proc(attn, x, num_frames=args.frames)
        b = explicit_sparse_causal(attn, x, args.frames)
        print(f"max |sdpa - explicit| = {(a - b).abs().max().item():.3g}")
        for name, fn in (("posevid SDPA", lambda: proc(attn, x, num_frames=args.frames)),
                         ("explicit", lambda: explicit_sparse_causal(attn, x, args.frames))):  # fmt: skip
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            fn()
            t = time.perf_counter()
            for _ in range(args.repeats):
                fn()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            ms = (time.perf_counter() - t) / args.repeats * 1e3
            mem = f", peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if args.device.startswith("cuda") else ""
            print(f"{name:>14}: {ms:8.1f} ms/call{mem}")
    score_mib = args.frames * args.heads * args.tokens * 2 * args.tokens * x.element_size() / 2**20
    print(f"explicit score matrix alone: {score_mib:.0f} MiB (never stored by fused SDPA kernels)")


if __name__ == "__main__":
    main()
