"""Pose speed. Default (``--mode command``): frames/second of exactly what ``posevid pose VIDEO --out DIR`` does
by default (the command run in this process, at the source size, all outputs written), with the CPU time of this
process and its worker processes and the load average, per clip. ``--cli-args`` adds flags to the command.

    python benchmarks/pose_speed.py CLIP.mp4 ... --json pose_cmd.json
    python benchmarks/pose_speed.py CLIP.mp4 --cli-args="--no-overlay"

``--mode stages`` is the estimator comparison: decode + resize to 480x360 + estimation + FYP rendering (no encoding).

Each available estimator (mediapipe always; dwpose/rtmpose when their ONNX files are given or cached) runs
over the clips in video mode, decoding in a background thread as ``extract_keypoints`` does ("decode" is
then the time the main thread waited for frames; ``--no-prefetch`` decodes inline). The per-stage split,
the CPU time per frame (all threads) and the machine's load average are printed with the result, because
other processes on a shared CPU change the wall-clock numbers a lot. Prints a table and writes JSON.

    python benchmarks/pose_speed.py                               # examples/charades_0_20.mp4
    python benchmarks/pose_speed.py a.mp4 b.mp4 --json pose_speed.json --estimators mediapipe dwpose
    python benchmarks/pose_speed.py a.mp4 --workers 1 2                # one pass vs two parallel segments
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_segment(estimator_name: str, clip: str, size: tuple[int, int], segment, max_frames: int | None, use_prefetch: bool = True) -> dict:
    """Decode + resize + estimate + render one ``(warm_start, start, end)`` segment of ``clip`` (warm-up frames estimated, not counted)."""
    from posevid.pose import get_estimator, render_frame
    from posevid.pose.extract import prefetch
    from posevid.pose.geometry import FitTransform
    from posevid.video import iter_frames, probe_video

    cpu0 = time.process_time()
    warm_start, start, end = segment
    stop = end if end is not None else max_frames
    info = probe_video(clip)
    fit = FitTransform((info.width, info.height), size, "crop")
    est = get_estimator(estimator_name)
    t_decode = t_est = t_render = 0.0
    frames = detected = 0
    try:
        est.reset()
        it = (fit.frame(f) for f in iter_frames(clip, start=warm_start, max_frames=None if stop is None else stop - warm_start))
        it = prefetch(it) if use_prefetch else it  # as extract_keypoints does: decode overlaps estimation
        for _ in range(start - warm_start):  # warm-up of video-mode tracking, as extract_keypoints does at every cut
            est(next(it))
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
    return {"frames": frames, "detected": detected, "decode_resize": t_decode, "estimate": t_est, "render": t_render,
            "cpu": time.process_time() - cpu0}  # fmt: skip


def run_block(estimator_name: str, clip: str, size: tuple[int, int], block, max_frames: int | None, use_prefetch: bool = True) -> dict:
    """:func:`run_segment` over each segment of a worker's contiguous block (each decoded from its own warm-up start)."""
    parts = [run_segment(estimator_name, clip, size, seg, max_frames, use_prefetch) for seg in block]
    return {key: sum(p[key] for p in parts) for key in parts[0]}


def bench(
    estimator_name: str, clips: list[str], size: tuple[int, int], max_frames: int | None, use_prefetch: bool = True, workers: int = 1
) -> dict:
    """Frames/s = frames / wall-clock seconds over all clips, estimator set-up (and with workers, process start-up) included.

    Each clip is cut by ``plan_segments`` and the segments shared by ``assign_segments`` as ``extract_keypoints`` does:
    the first block runs here, the others in spawned processes (one pool for the run). Stage seconds are summed over
    the workers.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from posevid.pose.segments import assign_segments, plan_segments
    from posevid.video import probe_video

    parts: list[dict] = []
    wall = 0.0
    used = 1
    pool = ProcessPoolExecutor(max_workers=workers - 1, mp_context=multiprocessing.get_context("spawn")) if workers > 1 else None
    try:
        for clip in clips:
            n = probe_video(clip).num_frames if max_frames is None else min(max_frames, probe_video(clip).num_frames)
            blocks = assign_segments(plan_segments(n), workers)
            used = max(used, len(blocks))
            t0 = time.perf_counter()
            args = (estimator_name, clip, size)
            futures = [pool.submit(run_block, *args, block, max_frames, use_prefetch) for block in blocks[1:]] if pool else []
            parts.append(run_block(*args, blocks[0], max_frames, use_prefetch))
            parts.extend(f.result() for f in futures)
            wall += time.perf_counter() - t0
    finally:
        if pool is not None:
            pool.shutdown()
    frames = sum(p["frames"] for p in parts)
    sec = {k: sum(p[k] for p in parts) for k in ("decode_resize", "estimate", "render")}
    return {
        "estimator": estimator_name,
        "workers": used,
        "frames": frames,
        "fps": frames / wall,
        "estimator_only_fps": frames / sec["estimate"],  # per estimator instance
        "seconds": dict(sec, wall=wall),
        "detection_rate": sum(p["detected"] for p in parts) / max(frames, 1),
        "cpu_ms_per_frame": 1000 * sum(p["cpu"] for p in parts) / max(frames, 1),  # all threads and workers
    }


def bench_command(clip: str, cli_args: list[str]) -> dict:
    """Wall and CPU seconds of one ``posevid pose CLIP`` run (in-process; worker processes counted by rusage)."""
    import resource
    import shutil
    import tempfile

    from posevid.cli import main as cli_main
    from posevid.video import probe_video

    out = Path(tempfile.mkdtemp(prefix="pose-speed-"))
    try:
        load = os.getloadavg()[0]
        cpu0 = time.process_time()
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        code = cli_main(["pose", clip, "--out", str(out / "o"), "--quiet", *cli_args])
        wall = time.perf_counter() - t0
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = time.process_time() - cpu0 + (kids1.ru_utime - kids0.ru_utime) + (kids1.ru_stime - kids0.ru_stime)
        if code != 0:
            raise SystemExit(f"posevid pose {clip} failed with exit code {code}")
        settings = json.loads((out / "o" / "pose.json").read_text())["settings"]
        frames, seconds, parts = settings["num_frames"], settings["seconds"], settings.get("parts")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    info = probe_video(clip)
    return {"clip": Path(clip).name, "size": [info.width, info.height], "frames": frames, "wall_s": wall, "fps": frames / wall,
            "cpu_s": cpu, "cpu_ms_per_frame": 1000 * cpu / frames, "fps_if_2_idle_cores": 2 * frames / cpu,
            "stages_s": seconds, "load_before": load, "load_after": os.getloadavg()[0], "parts": parts}  # fmt: skip


def main_command(clips: list[str], cli_args: list[str], json_path: str | None) -> None:
    rows = [bench_command(c, cli_args) for c in clips]
    print(f"posevid pose {' '.join(cli_args) or '(defaults)'} on {len(clips)} clip(s), {os.cpu_count()} CPUs")
    print(f"{'clip':<12} {'size':>9} {'frames':>6} {'wall s':>7} {'fps':>6} {'CPU ms/frame':>12} {'fps on 2 idle cores':>19} "
          f"{'extract s':>9} {'render s':>8} {'load':>11}")  # fmt: skip
    for r in rows:
        print(f"{r['clip']:<12} {r['size'][0]:>4}x{r['size'][1]:<4} {r['frames']:>6} {r['wall_s']:>7.2f} {r['fps']:>6.1f} "
              f"{r['cpu_ms_per_frame']:>12.1f} {r['fps_if_2_idle_cores']:>19.1f} {r['stages_s']['extract']:>9.2f} "
              f"{r['stages_s']['render']:>8.2f} {r['load_before']:>5.2f}-{r['load_after']:<5.2f}")  # fmt: skip
        if r["parts"]:  # --wholebody: frames with a face and with each hand
            print(f"{'':<12} face {r['parts']['face'] / r['frames']:.3f}, left hand {r['parts']['left_hand'] / r['frames']:.3f}, "
                  f"right hand {r['parts']['right_hand'] / r['frames']:.3f}")  # fmt: skip
    frames, wall, cpu = (sum(r[k] for r in rows) for k in ("frames", "wall_s", "cpu_s"))
    print(f"{'all':<12} {'':>9} {frames:>6} {wall:>7.2f} {frames / wall:>6.1f} {1000 * cpu / frames:>12.1f} {2 * frames / cpu:>19.1f}")
    if json_path:
        report = {"cli_args": cli_args, "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
                  "rows": rows, "fps_all": frames / wall, "fps_if_2_idle_cores_all": 2 * frames / cpu}  # fmt: skip
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="*", default=[str(REPO / "examples" / "charades_0_20.mp4")], help="videos to run on")
    parser.add_argument("--mode", default="command", choices=["command", "stages"], help="the whole command, or the estimator stages")
    parser.add_argument("--cli-args", default="", help="extra flags for the command (--mode command), e.g. --cli-args='--no-overlay'")
    parser.add_argument("--estimators", nargs="+", default=["mediapipe", "dwpose", "rtmpose"], help="estimators to try")
    parser.add_argument("--size", default="480x360", help="(stages) frames are resized (center-crop) to this size first")
    parser.add_argument("--max-frames", type=int, default=None, help="frames per clip (default: all)")
    parser.add_argument("--no-prefetch", action="store_true", help="decode in the main thread (no overlap with estimation)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="worker counts to run (e.g. 1 2): parallel segments per clip")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.mode == "command":
        import shlex

        main_command(args.clips, shlex.split(args.cli_args), args.json)
        return

    from posevid.errors import PosevidError
    from posevid.utils.sizes import parse_size

    size = parse_size(args.size)
    load_before = os.getloadavg()
    results, skipped = [], {}
    for name in args.estimators:
        for workers in args.workers:
            try:
                results.append(bench(name, args.clips, size, args.max_frames, not args.no_prefetch, workers))
            except PosevidError as exc:  # e.g. ONNX models not available offline
                skipped[name] = str(exc)
                break
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
    head = f"{'estimator':<10} {'workers':>7} {'frames':>6} {'fps (all)':>9} {'fps (est.)':>10}"
    print(f"{head} {'decode+resize s':>15} {'estimate s':>10} {'render s':>8} {'detected':>8} {'CPU ms/frame':>12}")
    for r in results:
        s = r["seconds"]
        print(f"{r['estimator']:<10} {r['workers']:>7} {r['frames']:>6} {r['fps']:>9.1f} {r['estimator_only_fps']:>10.1f} "
              f"{s['decode_resize']:>15.2f} {s['estimate']:>10.2f} {s['render']:>8.2f} {r['detection_rate']:>8.1%} "
              f"{r['cpu_ms_per_frame']:>12.1f}")  # fmt: skip
    for name, why in skipped.items():
        print(f"{name:<10} skipped: {why}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
