"""The cases of the outputs-unchanged contract, run in the same way by the test and by the reference maker.

``tests/test_cli_outputs_unchanged.py`` runs them with today's code; ``fixtures/cli_reference/make_reference.py``
runs them with the code from before the redesign (commit bf08c22, from a separate worktree) and stores the result.
Both sides call ``posevid.cli.main`` in-process and capture the same things, so only the code under test differs:

- ``arrays``: the PNG frames (stacked, uint8, in file-name order), the exact frames handed to each mp4's encoder
  (x264's output itself is not reproducible, the frames it is given are), and the pose case's keypoints (float);
- ``meta``: the PNG names, the sidecars and keypoints.json without the keypoints, with temporary paths replaced by
  placeholders and run-dependent keys (times, versions) removed.

Only names and arguments that the bf08c22 code also understands may be used here. ``save``/``load`` define the
stored format: one ``<case>.npz`` per case and ``reference.json`` (see ``fixtures/cli_reference/README.md``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REFERENCE_COMMIT = "bf08c22"  # the code the stored reference comes from (before the redesign)

CASES = ["generate_plain", "generate_windowed", "generate_streamed", "generate_multi", "animate", "animate_batched",
         "animate_ddim_subset", "pose"]  # fmt: skip

SMALL = ["--stride", "2", "--height", "64", "--width", "64", "--steps", "2", "--seed", "7"]
# MediaPipe's video mode tracks from frame to frame, so segment boundaries change keypoints: the pose case pins one
# worker (the bf08c22 default on these 6 frames, as its pose.json records) so the comparison never depends on cores.
POSE_ARGS = ["--max-frames", "6", "--size", "128x128", "--workers", "1", "--quiet"]

# Sidecar keys that differ from run to run: never stored, never compared.
VOLATILE = {"created", "environment", "load_seconds", "generate_seconds", "seconds"}


@dataclass(frozen=True)
class Inputs:
    """What the cases read: the two tiny releases, the repository's examples and fixtures, and a scratch folder."""

    fyp: Path
    dreampose: Path
    examples: Path
    fixtures: Path
    tmp: Path

    def placeholders(self) -> dict[str, str]:
        return {str(self.fyp): "<FYP>", str(self.dreampose): "<DP>", str(self.tmp): "<TMP>", str(self.examples): "<EX>",
                str(self.fixtures): "<FIX>"}  # fmt: skip


def run_cases(inputs: Inputs, pose_flags: list[str] | tuple[str, ...] = ()) -> dict[str, dict]:
    """Run every case once; return ``{case: {"arrays": {name: ndarray}, "meta": {...}}}``.

    ``pose_flags`` are added to ``posevid pose`` (today's code needs flags for the earlier defaults; bf08c22 none).
    """
    from plugins.dreampose import write_synthetic_densepose
    from posevid.cli import main
    from posevid.video import io

    written: dict[str, list[np.ndarray]] = {}
    original = io.VideoWriter.write

    def write(self, frame):
        written.setdefault(_final_name(self.path.name), []).append(np.array(frame, dtype=np.uint8, copy=True))
        return original(self, frame)

    def run(*args) -> None:
        written.clear()
        code = main([str(a) for a in args])
        assert code == 0, args

    def mp4(path: Path) -> np.ndarray:
        return np.stack(written.pop(path.name))

    subs = inputs.placeholders()
    tmp, out = inputs.tmp, {}
    io.VideoWriter.write = write
    try:
        fyp = ["generate", "--model", inputs.fyp, "--pose", inputs.examples / "dance_skeleton.mp4", *SMALL]
        # 1. plain, with gif and PNG frames
        run(*fyp, "--prompt", "a robot dancing", "--frames", "4", "--out", tmp / "plain" / "v.mp4", "--gif",
            "--frames-dir", tmp / "plain_frames")  # fmt: skip
        out["generate_plain"] = _case(tmp / "plain_frames", {"mp4": mp4(tmp / "plain" / "v.mp4")}, {"sidecar": tmp / "plain" / "v.json"},
                                      subs)  # fmt: skip
        # 2. windowed, in memory (PNG frames force the in-memory path)
        run(*fyp, "--prompt", "a robot dancing", "--frames", "6", "--window", "4", "--overlap", "2",
            "--out", tmp / "win" / "v.mp4", "--frames-dir", tmp / "win_frames")  # fmt: skip
        out["generate_windowed"] = _case(tmp / "win_frames", {"mp4": mp4(tmp / "win" / "v.mp4")}, {"sidecar": tmp / "win" / "v.json"}, subs)
        # 3. windowed, streamed (mp4 only: pose and frames streamed)
        run(*fyp, "--prompt", "a robot dancing", "--frames", "6", "--window", "4", "--overlap", "2", "--out", tmp / "stream" / "v.mp4")
        out["generate_streamed"] = _case(None, {"mp4": mp4(tmp / "stream" / "v.mp4")}, {"sidecar": tmp / "stream" / "v.json"}, subs)
        # 4. two prompts x two videos, no guidance, another sampler, side by side
        run(*fyp, "--prompt", "a dancer", "--prompt", "a knight", "--num-videos-per-prompt", "2", "--guidance", "1",
            "--scheduler", "dpm++", "--frames", "3", "--side-by-side", "--out", tmp / "multi" / "v.mp4",
            "--frames-dir", tmp / "multi_frames")  # fmt: skip
        videos = {f"mp4/v-{k}.mp4": mp4(tmp / "multi" / f"v-{k}.mp4") for k in range(4)}
        sidecars = {f"sidecar/{p.name}": p for p in sorted((tmp / "multi").glob("*.json"))}
        out["generate_multi"] = _case(tmp / "multi_frames", videos, sidecars, subs)

        poses = write_synthetic_densepose(tmp / "poses", range(3))
        dp = ["animate", "--image", inputs.examples / "key_frame.png", "--densepose", poses, "--model", inputs.dreampose,
              "--custom-vae", inputs.dreampose / "vae_1499.pth", "--s1", "8", "--s2", "3", "--steps", "2", "--seed", "5",
              "--quiet"]  # fmt: skip
        for name, extra in (
            ("animate", []),
            ("animate_batched", ["--frame-batch", "2"]),
            ("animate_ddim_subset", ["--scheduler", "ddim", "--frames", "1:3"]),
        ):
            run(*dp, *extra, "--out", tmp / name / "v.mp4")
            out[name] = _case(tmp / name / "v_frames", {"mp4": mp4(tmp / name / "v.mp4")}, {"sidecar": tmp / name / "v.json"}, subs)

        run("pose", inputs.fixtures / "pose" / "charades_3IPI3_cut.mp4", "--out", tmp / "pose", *POSE_ARGS, *pose_flags)
        videos = {"skeleton": mp4(tmp / "pose" / "skeleton.mp4"), "overlay": mp4(tmp / "pose" / "overlay.mp4")}
        out["pose"] = _case(None, videos, {"sidecar": tmp / "pose" / "pose.json"}, subs)
        keypoints = json.loads((tmp / "pose" / "keypoints.json").read_text())
        out["pose"]["arrays"]["keypoints"] = np.asarray(keypoints.pop("keypoints"), dtype=np.float64)
        out["pose"]["meta"]["keypoints.json"] = normalise(keypoints, subs)
    finally:
        io.VideoWriter.write = original
    return out


def _case(frames_dir: Path | None, videos: dict[str, np.ndarray], sidecars: dict[str, Path], subs: dict[str, str]) -> dict:
    arrays, meta = dict(videos), {}
    if frames_dir is not None:
        pngs = sorted(frames_dir.glob("*.png"))
        arrays["frames"] = np.stack([np.asarray(Image.open(p)) for p in pngs])
        meta["frame_names"] = [p.name for p in pngs]
    for key, path in sidecars.items():
        meta[key] = normalise({k: v for k, v in json.loads(path.read_text()).items() if k not in ("created", "environment")}, subs)
    return {"arrays": arrays, "meta": meta}


def normalise(value, subs: dict[str, str], drop: frozenset[str] | set[str] = frozenset()):
    """``value`` with the VOLATILE keys and ``drop`` removed at every depth, and the ``subs`` replaced in strings."""
    if isinstance(value, dict):
        return {k: normalise(v, subs, drop) for k, v in value.items() if k not in VOLATILE and k not in drop}
    if isinstance(value, list):
        return [normalise(v, subs, drop) for v in value]
    if isinstance(value, str):
        for old, new in subs.items():
            value = value.replace(old, new)
    return value


def _final_name(name: str) -> str:
    """``.v.abc123.part.mp4`` (an atomic temporary name) -> ``v.mp4``."""
    match = re.fullmatch(r"\.(.+)\.[^.]+\.part(\.\w+)", name)
    return match.group(1) + match.group(2) if match else name


def save(folder: Path, results: Mapping[str, dict], made_by: dict) -> None:
    """Store ``run_cases``' results: ``<case>.npz`` and ``reference.json`` (metadata and ``made_by``).

    A video whose frames are a run of the case's PNG frames (the usual case: the same frames go to both) is not
    stored twice; ``meta["video_frames"]`` records which run it is.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cases = {}
    for case, result in results.items():
        arrays, meta = dict(result["arrays"]), dict(result["meta"])
        frames = arrays.get("frames")
        runs = {}
        for key in [k for k in arrays if k not in ("frames", "keypoints")]:
            start = _run_of(arrays[key], frames)
            if start is not None:
                runs[key] = [start, start + len(arrays.pop(key))]
        if runs:
            meta["video_frames"] = runs
        np.savez_compressed(folder / f"{case}.npz", **arrays)
        cases[case] = meta
    reference = {"made_by": made_by, "cases": cases}
    (folder / "reference.json").write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n")


def load(folder: Path) -> tuple[dict, dict[str, dict]]:
    """``(made_by, {case: {"arrays": ..., "meta": ...}})`` as ``run_cases`` returned them to ``save``."""
    reference = json.loads((folder / "reference.json").read_text())
    out = {}
    for case, meta in reference["cases"].items():
        meta = dict(meta)
        with np.load(folder / f"{case}.npz") as stored:
            arrays = {k: stored[k] for k in stored.files}
        for key, (start, stop) in meta.pop("video_frames", {}).items():
            arrays[key] = arrays["frames"][start:stop]
        out[case] = {"arrays": arrays, "meta": meta}
    return reference["made_by"], out


def _run_of(video: np.ndarray, frames: np.ndarray | None) -> int | None:
    """Index of the first of ``len(video)`` consecutive PNG frames equal to ``video``, or None."""
    if frames is None or video.shape[1:] != frames.shape[1:]:
        return None
    for start in range(len(frames) - len(video) + 1):
        if np.array_equal(frames[start : start + len(video)], video):
            return start
    return None
