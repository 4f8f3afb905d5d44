"""Issue 20 proof: the same keypoints, bit for bit, whatever the worker count or the engine; and what a cut costs.

For each clip:

1. ``posevid pose CLIP --npz --workers N`` for N = 1, 2, 4 (and 1 again: mediapipe run twice on the same frames):
   ``keypoints.npz`` arrays and ``keypoints.json`` bytes must be equal;
2. ``posevid prepare --poses``: the plain engine with 2 pose workers, and the Ray engine (a local instance, one pose
   process per clip), over all the clips: every ``poses/<id>.npz`` must hold the same arrays;
3. the boundary cost: the segmented track against one unbroken tracker pass over the same frames (the same
   clean-up, zero-phase smoothing over the whole track): frames that differ, per-frame median joint distance of the
   joints both see, and with ``--mmpose DIR`` (team13 renders ``DIR/<clip>.mp4``) the chamfer distance of each to
   MMPose (our skeleton drawn as ``posevid pose`` draws it, in the ``mmpose`` style at the source size).

    python benchmarks/pose_segments.py /work/shared/data/charades/*.mp4 --mmpose /work/shared/data/charades_stickman_mmpose \
        --work /tmp/segments --json segments.json
    python benchmarks/pose_segments.py LONG.mp4 --no-prepare     # e.g. a clip of 1,200+ frames: 4 segments, 4 processes

Each step prints as it finishes; the exit code is 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _same_npz(a: Path, b: Path) -> bool:
    x, y = _npz_arrays(a), _npz_arrays(b)
    return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)


def pose_runs(clip: Path, work: Path, workers: list[int]) -> dict:
    """``posevid pose`` with each worker count (the first one twice); True when every output equals the first."""
    from posevid.cli import main

    runs, ref = {}, None
    for i, n in enumerate([workers[0], *workers]):
        out = work / f"{clip.stem}-w{n}-{i}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        assert main(["pose", str(clip), "--out", str(out), "--quiet", "--npz", "--workers", str(n)]) == 0
        seconds = time.perf_counter() - t0
        settings = json.loads((out / "pose.json").read_text())["settings"]
        if ref is None:
            ref = out
        same = _same_npz(out / "keypoints.npz", ref / "keypoints.npz") and (
            (out / "keypoints.json").read_bytes() == (ref / "keypoints.json").read_bytes()
        )
        name = f"{n} workers" + (" (again)" if i == 1 else "")
        runs[name] = {"processes": settings["workers"], "seconds": round(seconds, 2), "same": same}
    return runs


def prepare_runs(clips: list[Path], work: Path) -> dict:
    """``prepare --poses`` on the plain engine (2 pose workers) and on Ray (local, 2 CPUs); same arrays per clip?"""
    import ray

    from posevid.data.prepare import prepare_dataset
    from posevid.data.prepare_ray import RaySettings

    src = work / "prepare-src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for clip in clips:
        os.symlink(clip.resolve(), src / clip.name)
    csv = work / "prepare-captions.csv"
    csv.write_text("part_id,clip_id,caption\n" + "".join(f"{i},{c.stem},a person\n" for i, c in enumerate(clips)))
    outs, seconds = {}, {}
    for engine in ("plain", "ray"):
        out = work / f"prepare-{engine}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        if engine == "ray":
            ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
        try:
            extra = {"pose_workers": 2} if engine == "plain" else {"engine": "ray", "ray": RaySettings(num_cpus=2)}
            prepare_dataset(src, out, kind="charades", captions=csv, poses=True, progress=False, **extra)
        finally:
            if engine == "ray":
                ray.shutdown()
        outs[engine], seconds[engine] = out, round(time.perf_counter() - t0, 1)
    same = {c.stem: _same_npz(outs["plain"] / "poses" / f"{c.stem}.npz", outs["ray"] / "poses" / f"{c.stem}.npz") for c in clips}
    return {"same": same, "seconds": seconds}


def boundary_cost(clip: Path, mmpose_dir: Path | None) -> dict:
    """The segmented track (as shipped) against one unbroken tracker pass over the same frames, same clean-up."""
    from posevid.pose.extract import extract_keypoints, extract_keypoints_from_frames
    from posevid.video import iter_frames, probe_video

    info = probe_video(clip)
    seg = extract_keypoints(clip, workers=1, progress=False)
    one = extract_keypoints_from_frames(iter_frames(clip), info.width, info.height, fps=info.fps, source=str(clip))
    a, b = seg.keypoints[:, 0], one.keypoints[:, 0]
    both = (a[..., 2] > 0.3) & (b[..., 2] > 0.3)
    dist = np.linalg.norm(a[..., :2] - b[..., :2], axis=-1)
    med = np.array([np.median(dist[t][both[t]]) if both[t].any() else 0.0 for t in range(len(a))])
    cut = seg.meta["segments"][1] if len(seg.meta["segments"]) > 1 else len(a)
    after = med[cut:]
    row = {
        "frames": len(a), "segments": seg.meta["segments"], "frames_differing": int((np.abs(a - b).max(axis=(1, 2)) > 0).sum()),
        "median_px_after_first_cut": round(float(np.median(after)), 2) if len(after) else 0.0,
        "p90_px_after_first_cut": round(float(np.percentile(after, 90)), 2) if len(after) else 0.0,
        "frames_over_5px": int((med > 5).sum()), "max_joint_px": round(float(dist[both].max()), 1) if both.any() else 0.0,
        "height": info.height,
    }  # fmt: skip
    if mmpose_dir is not None and (mmpose_dir / clip.name).is_file():
        row["chamfer_px_segmented"], row["chamfer_px_unbroken"] = (_chamfer(s, mmpose_dir / clip.name) for s in (seg, one))
    return row


def _chamfer(seq, render: Path) -> float:
    """Median chamfer to the MMPose render, our skeleton drawn as ``posevid pose`` draws it, in the mmpose style."""
    from posevid.pose.chamfer import video_chamfer
    from posevid.pose.options import options_from_flags
    from posevid.pose.render import render_sequence
    from posevid.video import iter_frames

    opts = options_from_flags()
    drawn = render_sequence(opts.prepare(seq), style="mmpose", threshold=opts.draw_threshold, size=(seq.width, seq.height))
    return round(float(video_chamfer(drawn, iter_frames(render, max_frames=len(seq))).median_px), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/pose-segments"), help="scratch folder (outputs of every run)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--mmpose", type=Path, default=None, help="folder of team13 MMPose renders named as the clips")
    parser.add_argument("--no-prepare", action="store_true", help="skip the plain vs Ray prepare comparison")
    parser.add_argument("--no-cost", action="store_true", help="skip the boundary cost")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    report: dict = {"cpu_count": os.cpu_count(), "load_before": os.getloadavg(), "clips": {}}
    ok = True
    for clip in args.clips:
        runs = pose_runs(clip, args.work, args.workers)
        ok &= all(r["same"] for r in runs.values())
        report["clips"][clip.name] = {"pose": runs}
        print(clip.name, "posevid pose:", json.dumps(runs), flush=True)
    if not args.no_prepare:
        report["prepare"] = prepare_runs(args.clips, args.work)
        ok &= all(report["prepare"]["same"].values())
        print("prepare --poses, plain (2 pose workers) vs ray:", json.dumps(report["prepare"]), flush=True)
    if not args.no_cost:
        for clip in args.clips:
            report["clips"][clip.name]["boundary"] = cost = boundary_cost(clip, args.mmpose)
            print(clip.name, "boundary cost:", json.dumps(cost), flush=True)
    report["load_after"] = os.getloadavg()
    report["all_same"] = ok
    print("all the same, bit for bit:", ok)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
