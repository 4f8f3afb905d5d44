"""``posevid prepare`` throughput with poses, 1 vs 2 workers, plain engine and Ray engine.

"Workers" means what each engine can parallelise:

* plain: ``--pose-workers N``, the parallel pose segments of each clip (clips one after another);
* ray: a local Ray instance with N CPUs, clips run in parallel through the Ray Data stages.

Every run starts from an empty output folder and does the full job (probe + decode check, keypoints,
skeleton video, manifest). Ray's start-up (``ray.init``) is timed apart from the preparation itself, as it
is paid once per command. The load average before and after each run is printed, because other
processes on a shared machine change wall-clock numbers a lot. Prints a table and writes JSON.

    python benchmarks/prepare_speed.py                                 # the shared Charades clips
    python benchmarks/prepare_speed.py SRC --captions CSV --workers 1 2 --engines plain ray --json out.json
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
# the shared data folder beside the checkout (main checkout: ../shared, worktrees: ../../shared)
SHARED = next(
    (p / "shared" / "data" / "charades" for p in (REPO, *REPO.parents) if (p / "shared" / "data" / "charades").is_dir()), Path(".")
)


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def run_once(src: Path, captions: Path, engine: str, workers: int) -> dict:
    from posevid.data.manifest import Manifest
    from posevid.data.prepare import prepare_dataset

    load_before = _loadavg()
    init_s = 0.0
    ray = None
    if engine == "ray":
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, logging_level="WARNING")
        init_s = time.perf_counter() - t0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            kwargs = {"pose_workers": workers} if engine == "plain" else {}
            res = prepare_dataset(src, tmp, kind="charades", captions=captions, poses=True, progress=False, engine=engine, **kwargs)
            wall = time.perf_counter() - t0
            ok = [e for e in Manifest(tmp).entries() if e.get("status") == "ok"]
    finally:
        if ray is not None:
            ray.shutdown()
    frames = sum(e["num_frames"] for e in ok)
    return {
        "engine": engine,
        "workers": workers,
        "clips": res.ok,
        "frames": frames,
        "prepare_s": round(wall, 2),
        "ray_init_s": round(init_s, 2),
        "frames_per_s": round(frames / wall, 1),
        "clips_per_min": round(60 * res.ok / wall, 2),
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", nargs="?", default=str(SHARED), help="clip folder (default: the shared Charades clips)")
    ap.add_argument("--captions", default=None, help="caption CSV (default: SRC/captions.csv)")
    ap.add_argument("--engines", nargs="+", default=["plain", "ray"], choices=["plain", "ray"])
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    src = Path(args.src)
    captions = Path(args.captions) if args.captions else src / "captions.csv"
    rows = []
    for engine in args.engines:
        for workers in args.workers:
            row = run_once(src, captions, engine, workers)
            rows.append(row)
            print(
                f"{engine:5s} workers={workers}  {row['clips']} clips / {row['frames']} frames in {row['prepare_s']:.1f} s "
                f"= {row['frames_per_s']:.1f} frames/s ({row['clips_per_min']:.2f} clips/min)"
                + (f", + ray.init {row['ray_init_s']:.1f} s" if engine == "ray" else "")
                + f"  [load {row['loadavg_before']} -> {row['loadavg_after']}]",
                flush=True,
            )
    if args.json:
        info = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "src": str(src), "runs": rows}
        Path(args.json).write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()
