"""Pose extraction speed: frames/second of decode + resize to 480x360 + estimation + FYP rendering.

Each available estimator (mediapipe always; dwpose/rtmpose when their ONNX files are given or cached) runs
over the clips in video mode, decoding in a background thread as ``extract_keypoints`` does ("decode" is
then the time the main thread waited for frames; ``--no-prefetch`` decodes inline). The per-stage split,
the CPU time per frame (all threads) and the machine's load average are printed with the result, because
other processes on a shared CPU change the wall-clock numbers a lot. Prints a table and writes JSON.

    python benchmarks/pose_speed.py                               # examples/charades_0_20.mp4
    python benchmarks/pose_speed.py a.mp4 b.mp4 --json pose_speed.json --estimators mediapipe dwpose
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bench(estimator_name: str, clips: list[str], size: tuple[int, int], max_frames: int | None, use_prefetch: bool = True) -> dict:
    from posevid.pose import get_estimator, render_frame
    from posevid.pose.extract import prefetch
    from posevid.pose.geometry import FitTransform
    from posevid.video import iter_frames, probe_video

    est = get_estimator(estimator_name)
    cpu0 = time.process_time()
    t_decode = t_est = t_render = 0.0
    frames = detected = 0
    try:
        for clip in clips:
            info = probe_video(clip)
            fit = FitTransform((info.width, info.height), size, "crop")
            est.reset()
            it = (fit.frame(f) for f in iter_frames(clip, max_frames=max_frames))
            it = prefetch(it) if use_prefetch else it  # as extract_keypoints does: decode overlaps estimation
            while True:
                t0 = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                t1 = time.perf_counter()
                people = est(frame)
                t2 = time.perf_counter()
                render_frame(people[0] if len(people) else people.reshape(0, people.shape[1], 3), size, "fyp", fmt=est.keypoint_format)
                t3 = time.perf_counter()
                t_decode, t_est, t_render = t_decode + t1 - t0, t_est + t2 - t1, t_render + t3 - t2
                frames += 1
                detected += len(people) > 0
    finally:
        est.close()
    total = t_decode + t_est + t_render
    cpu = time.process_time() - cpu0
    return {
        "estimator": estimator_name,
        "frames": frames,
        "fps": frames / total,
        "estimator_only_fps": frames / t_est,
        "seconds": {"decode_resize": t_decode, "estimate": t_est, "render": t_render, "total": total},
        "detection_rate": detected / max(frames, 1),
        "cpu_ms_per_frame": 1000 * cpu / max(frames, 1),  # all threads; robust to other processes' load
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="*", default=[str(REPO / "examples" / "charades_0_20.mp4")], help="videos to run on")
    parser.add_argument("--estimators", nargs="+", default=["mediapipe", "dwpose", "rtmpose"], help="estimators to try")
    parser.add_argument("--size", default="480x360", help="frames are resized (center-crop) to this size first")
    parser.add_argument("--max-frames", type=int, default=None, help="frames per clip (default: all)")
    parser.add_argument("--no-prefetch", action="store_true", help="decode in the main thread (no overlap with estimation)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()

    from posevid.errors import PosevidError
    from posevid.pose.geometry import parse_size

    size = parse_size(args.size)
    load_before = os.getloadavg()
    results, skipped = [], {}
    for name in args.estimators:
        try:
            results.append(bench(name, args.clips, size, args.max_frames, not args.no_prefetch))
        except PosevidError as exc:  # e.g. ONNX models not available offline
            skipped[name] = str(exc)
    report = {
        "clips": args.clips,
        "size": list(size),
        "prefetch": not args.no_prefetch,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "results": results,
        "skipped": skipped,
    }
    print(f"pose extraction at {size[0]}x{size[1]} on {len(args.clips)} clip(s), {os.cpu_count()} CPUs, "
          f"load average {load_before[0]:.2f} -> {report['loadavg_after'][0]:.2f}")  # fmt: skip
    head = f"{'estimator':<10} {'frames':>6} {'fps (all)':>9} {'fps (est.)':>10}"
    print(f"{head} {'decode+resize s':>15} {'estimate s':>10} {'render s':>8} {'detected':>8} {'CPU ms/frame':>12}")
    for r in results:
        s = r["seconds"]
        print(f"{r['estimator']:<10} {r['frames']:>6} {r['fps']:>9.1f} {r['estimator_only_fps']:>10.1f} {s['decode_resize']:>15.2f} "
              f"{s['estimate']:>10.2f} {s['render']:>8.2f} {r['detection_rate']:>8.1%} {r['cpu_ms_per_frame']:>12.1f}")  # fmt: skip
    for name, why in skipped.items():
        print(f"{name:<10} skipped: {why}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
