"""Detection rate and agreement with MMPose renders, per clip (the figures in docs/pose.md).

Each argument is ``RAW.mp4:MMPOSE_RENDER.mp4`` (the team13 skeleton video of the same clip). Our keypoints
(mediapipe, default clean-up, COCO-17) are compared with the joints recovered from the render (see
:mod:`posevid.pose.agreement`) at PCK@0.1 and PCK@0.2 of the torso size.

    python benchmarks/pose_agreement.py clipA.mp4:clipA_mmpose.mp4 clipB.mp4:clipB_mmpose.mp4 --json out.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", nargs="+", help="RAW.mp4:MMPOSE_RENDER.mp4")
    parser.add_argument("--no-smooth", action="store_true", help="score the raw estimator output")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    from posevid.pose import extract_keypoints
    from posevid.pose.agreement import agreement, recover_mmpose_joints
    from posevid.video import iter_frames

    rows = []
    for pair in args.pairs:
        raw, render = pair.split(":")
        seq = extract_keypoints(raw, smoothing=not args.no_smooth, progress=False, require_person=False).to_format("coco17")
        dots = [recover_mmpose_joints(f) for f in iter_frames(render, max_frames=len(seq))]
        ours = seq.keypoints[: len(dots), 0]
        a1, a2 = agreement(ours, dots, alpha=0.1), agreement(ours, dots, alpha=0.2)
        rows.append({"clip": Path(raw).name, "frames": len(seq), "detection_rate": seq.meta["detection_rate"],
                     "pck@0.1": a1.pck, "pck@0.2": a2.pck, "scored_frames": a1.frames - a1.skipped_frames,
                     "per_class@0.1": {k: v[0] / v[1] if v[1] else None for k, v in a1.per_class.items()}})  # fmt: skip
    print(f"{'clip':<12} {'frames':>6} {'detected':>8} {'PCK@0.1':>8} {'PCK@0.2':>8} {'scored':>6}  per class @0.1 (face/left/right)")
    for r in rows:
        pc = " / ".join(f"{v:.2f}" if v is not None else "-" for v in r["per_class@0.1"].values())
        head = f"{r['clip']:<12} {r['frames']:>6} {r['detection_rate']:>8.1%}"
        print(f"{head} {r['pck@0.1']:>8.3f} {r['pck@0.2']:>8.3f} {r['scored_frames']:>6}  {pc}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
