"""Wan2.2-Animate preprocessing speed on the CPU: ``posevid wan-preprocess`` (the task, files written) per clip.

For each configuration (whole-body or body-only keypoints; animate or replace mode) and clip, runs
:func:`posevid.tasks.wan_preprocess.wan_preprocess` at the default settings (30 fps, resolution area 1280x720,
preview on) into a temporary folder and reports output frames per second end to end, and per stage from the
task's own timings: decode, pose (keypoints), preprocess (Wan's face crops, pose drawing, masks), write (H.264
encoding of every file). Also the CPU seconds of this process (all threads) and the load average before and
after, since other processes on a shared CPU change wall-clock figures a lot. Prints a table and writes JSON.

    python benchmarks/wan_preprocess_speed.py                           # examples/charades_0_20.mp4
    python benchmarks/wan_preprocess_speed.py CLIPS... --json wan_pre.json --replace-max-frames 300

Replace mode holds the area-resized frames, masks and backgrounds of the whole clip in memory (about 10 MB per
frame at 1280x720), so ``--replace-max-frames`` caps its clips (default 300 output frames, 10 s at 30 fps).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [("whole-body", "animate"), ("body-only", "animate"), ("whole-body", "replace"), ("body-only", "replace")]


def run_one(clip: str, keypoints: str, mode: str, max_frames: int | None, image: str) -> dict:
    from posevid.tasks.wan_preprocess import WanPreprocessSettings, wan_preprocess

    with tempfile.TemporaryDirectory(prefix="wan-bench-") as tmp:
        settings = WanPreprocessSettings(
            video=clip, image=image, out=str(Path(tmp) / "out"), mode=mode, body_only=keypoints == "body-only",
            max_frames=max_frames, quiet=True,
        )  # fmt: skip
        cpu0, t0 = time.process_time(), time.perf_counter()
        result = wan_preprocess(settings)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    report, info = result.inputs.report, result.info
    frames = report.frames
    return {
        "clip": Path(clip).name, "keypoints": keypoints, "mode": mode, "max_frames": max_frames, "frames": frames,
        "decoded_frames": len(set(info.frame_indices.tolist())), "source_fps": round(info.source_fps, 3),
        "pose_size": list(report.pose_size), "frame_size": list(report.frame_size), "face_boxes_filled": report.face_boxes_filled,
        "seconds": {**info.seconds, "total": round(wall, 3)}, "cpu_seconds": round(cpu, 2),
        "fps": round(frames / wall, 2), "in_memory_fps": round(frames / sum(info.seconds[k] for k in ("decode", "pose", "preprocess")), 2),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", default=[str(REPO / "examples" / "charades_0_20.mp4")])
    ap.add_argument("--image", default=str(REPO / "examples" / "key_frame.png"), help="reference image")
    ap.add_argument("--configs", nargs="+", default=[f"{k}/{m}" for k, m in CONFIGS], help="keypoints/mode pairs to run")
    ap.add_argument("--replace-max-frames", type=int, default=300, help="output frames per clip in replace mode (memory)")
    ap.add_argument("--json", default="wan_preprocess_speed.json")
    args = ap.parse_args()

    rows, load_before = [], os.getloadavg()
    for config in args.configs:
        keypoints, mode = config.split("/")
        for clip in args.clips:
            row = run_one(clip, keypoints, mode, args.replace_max_frames if mode == "replace" else None, args.image)
            row["load_after"] = [round(v, 2) for v in os.getloadavg()]
            rows.append(row)
            s = row["seconds"]
            print(f"{config:20s} {row['clip']:12s} {row['frames']:5d} frames  {row['fps']:6.2f} fps "
                  f"(in memory {row['in_memory_fps']:6.2f})  decode {s['decode']:6.1f}  pose {s['pose']:6.1f}  "
                  f"preprocess {s['preprocess']:6.1f}  write {s['write']:6.1f} s  "
                  f"cpu {row['cpu_seconds']:6.1f} s  load {row['load_after'][0]}", flush=True)  # fmt: skip
    summary = {}
    for config in args.configs:
        mine = [r for r in rows if f"{r['keypoints']}/{r['mode']}" == config]
        frames, wall = sum(r["frames"] for r in mine), sum(r["seconds"]["total"] for r in mine)
        memory = sum(r["seconds"][k] for r in mine for k in ("decode", "pose", "preprocess"))
        summary[config] = {"frames": frames, "seconds": round(wall, 2), "fps": round(frames / wall, 2),
                           "in_memory_fps": round(frames / memory, 2)}  # fmt: skip
        done = summary[config]
        print(f"{config:20s} all clips: {frames} frames, {done['fps']} fps end to end, {done['in_memory_fps']} in memory")
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in os.getloadavg()]}  # fmt: skip
    Path(args.json).write_text(json.dumps({"machine": machine, "summary": summary, "runs": rows}, indent=2) + "\n")
    print(f"load average before {machine['load_before']}, after {machine['load_after']}; wrote {args.json}")


if __name__ == "__main__":
    main()
