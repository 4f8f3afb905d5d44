"""Fit and measure the MMPose calibration of issue 14 (the numbers in docs/pose.md, "Closer to MMPose").

Each argument is ``RAW.mp4:MMPOSE_RENDER.mp4`` (the team13 MMPose skeleton video of the same clip). Per clip:

1. mediapipe keypoints without smoothing (the raw track; cached in ``--cache`` as ``.npz``), and the MMPose
   joints recovered from the render (:func:`posevid.pose.agreement.recover_mmpose_joints`);
2. per frame and colour class, our COCO-17 joints (all, whatever their visibility) are matched one-to-one to the
   MMPose dots (Hungarian); a match within 0.2 x torso is that joint's MMPose position, no match means MMPose did
   not draw it here (or drew it far away);
3. **joint correction** (:mod:`posevid.pose.mmpose_fit`): ridge least squares on the matched joints;
   only joint types whose correction lowers the error in most leave-one-out folds are corrected;
   **limb rule**: visibility thresholds for arms and legs (0.1 / 0.2 / 0.3 / 0.5 each) chosen by the lowest chamfer;
4. every figure for a clip comes from choices and fits made on the *other* clips only (leave one clip out, the
   joint-type choice nested inside); the shipped file (``--write``) is then fitted on all clips;
5. chamfer distance to the MMPose render (:mod:`posevid.pose.chamfer`), our skeleton drawn in the same ``mmpose``
   style at the source size: raw, One-Euro, zero-phase, zero-phase + correction, + limb rule. Jitter is the
   median |second difference| of the visible joints (px/frame^2).

    python benchmarks/pose_calibrate.py A.mp4:A_mmpose.mp4 B.mp4:B_mmpose.mp4 ... --cache /tmp/posecal --json out.json
    python benchmarks/pose_calibrate.py ... --write src/posevid/pose/mmpose_fit.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RADIUS = 0.2  # a dot within this fraction of the torso is the MMPose position of the matched joint
LIMB_GRID = (0.1, 0.2, 0.3, 0.5)


def load_clip(raw: str, render: str, cache: Path | None):
    """(raw BlazePose sequence, MMPose dots per frame, distance maps of the MMPose render's lit pixels)."""
    from posevid.pose import KeypointSequence, extract_keypoints
    from posevid.pose.agreement import recover_mmpose_joints
    from posevid.pose.chamfer import distance_map, lit_mask
    from posevid.video import iter_frames

    npz = cache / f"{Path(raw).stem}.npz" if cache else None
    if npz is not None and npz.is_file():
        seq = KeypointSequence.load(npz)
    else:
        seq = extract_keypoints(raw, smoothing=False, progress=False, require_person=False)
        if npz is not None:
            seq.save(npz)
    dots, maps = [], []
    for f in iter_frames(render, max_frames=len(seq)):
        dots.append(recover_mmpose_joints(f))
        m = lit_mask(f)
        maps.append(distance_map(m).astype(np.float16) if m.any() else None)
    return seq, dots, maps


def match_targets(coco: np.ndarray, dots: list[dict]) -> np.ndarray:
    """(T, 17, 2) MMPose position of each of our joints (NaN: no dot of its class within RADIUS x torso)."""
    from scipy.optimize import linear_sum_assignment

    from posevid.pose.agreement import CLASSES, torso_size

    out = np.full(coco.shape[:2] + (2,), np.nan, np.float32)
    for t, (kp, frame_dots) in enumerate(zip(coco, dots, strict=False)):
        torso = torso_size(kp, threshold=0.0)
        if not torso or not any(len(d) for d in frame_dots.values()):
            continue
        for name, (_, joints) in CLASSES.items():
            found = frame_dots[name]
            mine = [j for j in joints if kp[j, 2] > 0]
            if not len(found) or not mine:
                continue
            cost = np.linalg.norm(kp[mine, None, :2] - found[None], axis=-1)
            for r, c in zip(*linear_sum_assignment(cost), strict=True):
                if cost[r, c] <= RADIUS * torso:
                    out[t, mine[r]] = found[c]
    return out


def has_dots(dots: list[dict]) -> np.ndarray:
    return np.array([any(len(d) for d in fd.values()) for fd in dots])


def fit_correction(clips: list[dict], types=None) -> dict:
    """Correction coefficients fitted on ``clips``; joint types not in ``types`` get zeros (no correction)."""
    from posevid.pose.mmpose_fit import COCO_TYPES, NEIGHBOURS, design, fit_coefficients

    samples: dict[str, list] = {name: [[], []] for name in NEIGHBOURS}
    for c in clips:
        kp33, target = c["kp33"], c["target"]
        for j, name in enumerate(COCO_TYPES):
            ok = np.isfinite(target[:, j, 0]) & (kp33[:, c["base"][j], 2] > 0)
            offsets, base = design(kp33[ok], j)
            samples[name][0].append(offsets)
            samples[name][1].append(target[ok, j] - base)
    coefs = fit_coefficients({k: (np.concatenate(a), np.concatenate(b)) for k, (a, b) in samples.items()})
    return {k: (v if types is None or k in types else np.zeros_like(v)) for k, v in coefs.items()}


def joint_errors(clip: dict, coefs: dict) -> tuple[dict, list]:
    """Per joint type (median error before, after) in % of torso on ``clip``'s matched joints, and the same for all joints.

    The pairs are those matched from the uncorrected positions, the same before and after.
    """
    from posevid.pose.agreement import torso_size
    from posevid.pose.mmpose_fit import COCO_TYPES, NEIGHBOURS, blazepose33_to_coco17_corrected

    torso = np.array([torso_size(k, 0.0) or np.nan for k in clip["coco"][:, 0]])
    corrected = blazepose33_to_coco17_corrected(clip["seq"].keypoints, coefs)
    before = np.linalg.norm(clip["coco"][:, 0, :, :2] - clip["target"], axis=-1) / torso[:, None] * 100
    after = np.linalg.norm(corrected[:, 0, :, :2] - clip["target"], axis=-1) / torso[:, None] * 100
    per_type = {}
    for name in NEIGHBOURS:
        cols = [j for j, t in enumerate(COCO_TYPES) if t == name]
        per_type[name] = [float(np.nanmedian(before[:, cols])), float(np.nanmedian(after[:, cols]))]
    return per_type, [float(np.nanmedian(before)), float(np.nanmedian(after))]


def select_types(clips: list[dict]) -> list[str]:
    """Joint types whose correction lowers the held-out error in more than half of the leave-one-out folds of ``clips``."""
    from posevid.pose.mmpose_fit import NEIGHBOURS

    wins = dict.fromkeys(NEIGHBOURS, 0)
    for held in clips:
        per_type, _ = joint_errors(held, fit_correction([c for c in clips if c is not held]))
        for name, (before, after) in per_type.items():
            wins[name] += after < before
    return [name for name, n in wins.items() if n > len(clips) / 2]


def limb_candidates() -> list[dict]:
    """Limb rules tried: face, shoulders and hips keep 0.3; arms (elbow, wrist) and legs (knee, ankle) each from LIMB_GRID."""
    base = {"nose": 0.3, "eye": 0.3, "ear": 0.3, "shoulder": 0.3, "hip": 0.3}
    return [dict(base, elbow=a, wrist=a, knee=b, ankle=b) for a in LIMB_GRID for b in LIMB_GRID]


def pick_limb_rule(tables: list[list[float]]) -> int:
    """Index of the candidate with the lowest mean chamfer relative to each clip's 0.3 rule (clips weigh the same)."""
    ref = limb_candidates().index(dict.fromkeys(("nose", "eye", "ear", "shoulder", "hip", "elbow", "wrist", "knee", "ankle"), 0.3))
    rel = np.array([[v / t[ref] for v in t] for t in tables])
    return int(np.argmin(rel.mean(axis=0)))


def chamfer_of(coco_kp: np.ndarray, maps: list, size: tuple[int, int], threshold, every: int = 1) -> tuple[float, int]:
    """Median chamfer (px) of our ``mmpose``-style render against the MMPose render's distance maps; frames compared."""
    from posevid.pose.chamfer import chamfer, lit_mask
    from posevid.pose.render import render_frame

    d = []
    for kp, to_b in zip(coco_kp[::every], maps[::every], strict=False):
        a = lit_mask(render_frame(kp, size, "mmpose", fmt="coco17", threshold=threshold))
        if to_b is None or not a.any():
            continue
        d.append(chamfer(a, to_b == 0, to_b.astype(np.float32)))
    return float(np.median(d)) if d else float("nan"), len(d)


def jitter(coco_kp: np.ndarray, threshold: float = 0.3) -> float:
    """Median |x[t+1] - 2 x[t] + x[t-1]| (px) over joints visible in all three frames."""
    xy, ok = coco_kp[:, 0, :, :2], coco_kp[:, 0, :, 2] > threshold
    acc = np.linalg.norm(xy[2:] - 2 * xy[1:-1] + xy[:-2], axis=-1)
    return float(np.median(acc[ok[2:] & ok[1:-1] & ok[:-2]]))


def _vector(rule: dict) -> np.ndarray:
    from posevid.pose.mmpose_fit import COCO_TYPES

    return np.array([rule[t] for t in COCO_TYPES], np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", nargs="+", help="RAW.mp4:MMPOSE_RENDER.mp4")
    parser.add_argument("--cache", default=None, help="folder for the raw keypoints (.npz), reused when present")
    parser.add_argument("--json", default=None, help="also write all results here")
    parser.add_argument("--write", default=None, help="write the calibration fitted on all clips to this JSON file")
    parser.add_argument("--sigmas", type=float, nargs="*", default=[], help="also measure uniform zero-phase widths (s)")
    parser.add_argument("--every", type=int, default=4, help="score the limb-rule candidates on every N-th frame (speed)")
    args = parser.parse_args()

    from posevid.pose.cleanup import smooth, smooth_zero_phase
    from posevid.pose.formats import BLAZE33_TO_COCO17, blazepose33_to_coco17
    from posevid.pose.mmpose_fit import NEIGHBOURS, blazepose33_to_coco17_corrected

    cache = Path(args.cache) if args.cache else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    clips = []
    for pair in args.pairs:
        raw, render = pair.split(":")
        seq, dots, maps = load_clip(raw, render, cache)
        kp33 = seq.keypoints[:, 0]
        coco = blazepose33_to_coco17(seq.keypoints)
        target = match_targets(coco[:, 0], dots)
        clips.append({"name": Path(raw).stem, "seq": seq, "kp33": kp33, "coco": coco, "target": target, "maps": maps,
                      "scored": has_dots(dots), "base": BLAZE33_TO_COCO17})  # fmt: skip
        print(f"{Path(raw).stem}: {len(seq)} frames, {np.isfinite(target[..., 0]).mean():.1%} of joints matched", flush=True)

    candidates = limb_candidates()
    for c in clips:  # limb rules on the smoothed, uncorrected joints (nothing fitted), every --every frames
        zp = blazepose33_to_coco17(smooth_zero_phase(c["seq"].keypoints, c["seq"].fps, scale=float(c["seq"].height)))
        size = (c["seq"].width, c["seq"].height)
        c["limb_table"] = [chamfer_of(zp, c["maps"], size, _vector(rule), args.every)[0] for rule in candidates]
        print(f"{c['name']}: limb rules (arms, legs) -> chamfer " + ", ".join(
            f"{r['elbow']:g},{r['knee']:g}: {v:.2f}" for r, v in zip(candidates, c["limb_table"], strict=True)), flush=True)  # fmt: skip

    rows = []
    for held in clips:
        others = [c for c in clips if c is not held]
        types = select_types(others)  # nested: chosen without the held-out clip
        coefs = fit_correction(others, types)
        rule = candidates[pick_limb_rule([c["limb_table"] for c in others])]
        seq, size, fps = held["seq"], (held["seq"].width, held["seq"].height), held["seq"].fps
        raw33 = seq.keypoints
        per_joint, all_joints = joint_errors(held, coefs)
        times = np.arange(len(seq)) / fps
        zp = smooth_zero_phase(raw33, fps, scale=float(seq.height))
        variants = {
            "raw": (blazepose33_to_coco17(raw33), 0.3),
            "one-euro": (blazepose33_to_coco17(smooth(raw33, times, scale=float(seq.height))), 0.3),
            "zero-phase": (blazepose33_to_coco17(zp), 0.3),
            **{
                f"zero-phase {s:g}s, uniform": (
                    blazepose33_to_coco17(smooth_zero_phase(raw33, fps, scale=float(seq.height), sigma_s=s, speed=None)),
                    0.3,
                )
                for s in args.sigmas
            },
            "zero-phase + corrected": (blazepose33_to_coco17_corrected(zp, coefs), 0.3),
            "zero-phase + corrected + limb rule": (blazepose33_to_coco17_corrected(zp, coefs), _vector(rule)),
        }
        result = {"clip": held["name"], "frames": len(seq), "fps": fps, "height": seq.height, "corrected_types": types,
                  "per_joint_error_pct_torso": per_joint, "all_joints_error_pct_torso": all_joints, "limb_rule": rule,
                  "chamfer_px": {}, "jitter_px": {}}  # fmt: skip
        for name, (kp, thr) in variants.items():
            med, n = chamfer_of(kp, held["maps"], size, thr)
            result["chamfer_px"][name] = med
            result["jitter_px"][name] = jitter(kp)
            print(f"  {held['name']:<6} {name:<36} chamfer {med:7.3f} px ({100 * med / seq.height:.2f} % h, {n} frames)  "
                  f"jitter {result['jitter_px'][name]:.2f} px", flush=True)  # fmt: skip
        print(f"  {held['name']} joint error (% torso, median) before/after: " + ", ".join(
            f"{k} {a:.1f}->{b:.1f}" for k, (a, b) in per_joint.items()) + f"; all {all_joints[0]:.1f}->{all_joints[1]:.1f}; "
            f"corrected types {types}; limb rule arms {rule['elbow']:g} legs {rule['knee']:g}", flush=True)  # fmt: skip
        rows.append(result)

    if args.write:
        types = select_types(clips)
        coefs = fit_correction(clips, types)
        rule = candidates[pick_limb_rule([c["limb_table"] for c in clips])]
        data = {"about": "posevid BlazePose-33 -> COCO-17 correction and limb rule, fitted by benchmarks/pose_calibrate.py on "
                         + ", ".join(c["name"] for c in clips) + " (Charades, MMPose HRNet renders)",
                "corrected_types": types,
                "neighbours": {k: list(v) for k, v in NEIGHBOURS.items()},
                "coefficients": {k: [round(float(x), 5) for x in v] for k, v in coefs.items()},
                "draw_thresholds": rule}  # fmt: skip
        Path(args.write).write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {args.write}: corrected types {types}, limb rule {rule}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
