"""``evaluate()``: run the requested metrics over a set of generated videos and build the report.

Metric names (``--metrics``):

* unpaired: ``pose`` (PCK/OKS/AP/detection rate), ``clip_consistency``, ``clip_text_alignment``,
  ``clip_image_alignment``;
* paired (need ``--reference``): ``l1``, ``psnr``, ``psnr_uint8_overflow_buggy``, ``ssim``, ``lpips``,
  ``fid`` (frames, set level), ``fvd`` (clips, set level).

``auto`` (default) = the paired ones whose weights were given (``l1,psnr,ssim`` always) when
``--reference`` is given, else the unpaired ones whose inputs were given (``clip_consistency`` always).
``all`` = every metric; those whose weights or inputs are missing are skipped with a note in the report.
A metric named explicitly whose weights or inputs are missing is an error naming the flag to pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from posevid.errors import InputError, PosevidError
from posevid.eval import paired
from posevid.eval.config import EvalConfig
from posevid.eval.defaults import EVAL_DEFAULTS as D
from posevid.eval.frechet import frechet_distance_features
from posevid.eval.inputs import Item, collect_items, load_frames, pair_items, sidecar_settings
from posevid.utils.progress import hide_inner_bar, progress_bar

PAIRED = ("l1", "psnr", "psnr_uint8_overflow_buggy", "ssim", "lpips", "fid", "fvd")
UNPAIRED = ("pose", "clip_consistency", "clip_text_alignment", "clip_image_alignment")
ALL_METRICS = UNPAIRED + PAIRED
ALIASES = {
    "consistency": "clip_consistency", "text": "clip_text_alignment", "text_alignment": "clip_text_alignment",
    "clip_score": "clip_text_alignment", "image_alignment": "clip_image_alignment", "pck": "pose", "oks": "pose",
    "psnr_buggy": "psnr_uint8_overflow_buggy", "mae": "l1",
}  # fmt: skip
CLIP_METRICS = ("clip_consistency", "clip_text_alignment", "clip_image_alignment")


# ----------------------------------------------------------------------------------------------- metrics selection
_NEEDS = {
    "lpips": ("lpips_weights", "--lpips-weights (the LPIPS alex.pth/vgg.pth linear layers; see docs/evaluation.md)"),
    "fid": ("inception_weights", "--inception-weights (pytorch-fid's pt_inception-2015-12-05-6726825d.pth)"),
    "fvd": ("i3d_weights", "--i3d-weights (pytorch-i3d's rgb_imagenet.pt)"),
    "pose": ("pose", "--pose (the conditioning keypoints file from 'posevid pose')"),
    "clip_image_alignment": ("reference_image", "--reference-image (the input photo)"),
}


def _missing_requirement(name: str, cfg: EvalConfig, prompts_known: bool) -> str | None:
    if name in PAIRED and not cfg.reference:
        return "--reference (the ground-truth videos or frame folders)"
    if name in _NEEDS and not getattr(cfg, _NEEDS[name][0]):
        return _NEEDS[name][1]
    if name == "clip_text_alignment" and not (cfg.prompt or prompts_known):
        return "--prompt (the text the videos were made from)"
    return None


def resolve_metrics(cfg: EvalConfig, prompts_known: bool = False) -> list[str]:
    """Expand ``auto``/``all``/a comma list into metric names; see the module docstring for the rules."""
    spec = [s.strip().lower() for s in cfg.metrics.split(",") if s.strip()]
    if spec == ["auto"]:
        if cfg.reference:
            wanted = [m for m in PAIRED if m != "psnr_uint8_overflow_buggy" and not _missing_requirement(m, cfg, prompts_known)]
        else:
            wanted = [m for m in UNPAIRED if not _missing_requirement(m, cfg, prompts_known)]
        return wanted
    if spec == ["all"]:
        wanted = []
        for m in ALL_METRICS:
            need = _missing_requirement(m, cfg, prompts_known)
            if need:
                cfg.notes.append(f"{m} skipped: it needs {need}")
            else:
                wanted.append(m)
        return wanted
    wanted = []
    for s in spec:
        name = ALIASES.get(s, s)
        if name not in ALL_METRICS:
            raise InputError(f"unknown metric '{s}'", hint=f"use auto, all or a comma list of: {', '.join(ALL_METRICS)}")
        need = _missing_requirement(name, cfg, prompts_known)
        if need:
            raise InputError(f"metric {name} needs {need}", hint=f"pass it, or drop {name} from --metrics")
        if name not in wanted:
            wanted.append(name)
    return wanted


# ----------------------------------------------------------------------------------------------- helpers
def _to_tensor(frames: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def _resize_to(frames: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
    import cv2

    return np.stack([cv2.resize(f, wh, interpolation=cv2.INTER_AREA) for f in frames])


def fvd_clips(frames: np.ndarray, clip_length: int = D.fvd_clip_length, size: int = D.fvd_size) -> tuple[Any, int]:
    """Non-overlapping ``clip_length``-frame clips, short side resized to ``size`` and centre-cropped, in [-1, 1].

    Returns ``(N, 3, clip_length, size, size)`` and the number of frames padded (a video shorter than one clip
    is padded by repeating its last frame).
    """
    import torch.nn.functional as F

    padded = 0
    if len(frames) < clip_length:
        padded = clip_length - len(frames)
        frames = np.concatenate([frames, np.repeat(frames[-1:], padded, axis=0)])
    n = len(frames) // clip_length
    x = _to_tensor(frames[: n * clip_length])
    h, w = x.shape[-2:]
    s = size / min(h, w)
    x = F.interpolate(x, size=(max(size, round(h * s)), max(size, round(w * s))), mode="bilinear", align_corners=False, antialias=True)
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    x = x[..., top : top + size, left : left + size] * 2 - 1
    return x.reshape(n, clip_length, 3, size, size).permute(0, 2, 1, 3, 4).contiguous(), padded


def _batched(fn, x, batch_size: int):
    import torch

    with torch.no_grad():
        return torch.cat([fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).cpu().numpy().astype(np.float64)


def _mean(values: Iterable[float]) -> float:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(vals)) if vals else float("nan")


# ----------------------------------------------------------------------------------------------- pose
class _PoseScorer:
    def __init__(self, cfg: EvalConfig, notes: list[str]) -> None:
        from posevid.pose.sequence import KeypointSequence

        self.cfg = cfg
        self.path = Path(cfg.pose)
        self.single = KeypointSequence.load(self.path) if self.path.is_file() else None
        if self.single is None and not self.path.is_dir():
            raise InputError(f"keypoints file not found: {self.path}", hint="pass the file written by 'posevid pose' with --pose")
        made_by = str((self.single.meta if self.single else {}).get("estimator", "")) or "unknown"
        self.estimator_name, self.estimator = self._pick_estimator(made_by, notes)

    def _pick_estimator(self, made_by: str, notes: list[str]):
        from posevid.pose.estimators.base import get_estimator

        name = self.cfg.pose_estimator
        if name != "auto":
            return name, get_estimator(name)
        if made_by != "dwpose":
            try:  # dwpose only if its models are already here: never download implicitly
                return "dwpose", get_estimator("dwpose", allow_download=False)
            except Exception as exc:
                reason = (str(exc) or type(exc).__name__).split(" (")[0].splitlines()[0][:100]
                notes.append(
                    f"pose re-detection uses mediapipe, the same estimator family as the conditioning ({made_by}): dwpose is not usable "
                    f"here ({reason}); agreement may be optimistic — fetch the dwpose models and pass --pose-estimator dwpose"
                )
        return "mediapipe", get_estimator("mediapipe")

    def _sequence(self, item: Item):
        from posevid.pose.sequence import KeypointSequence

        if self.single is not None:
            return self.single
        for cand in (self.path / f"{item.name}.json", self.path / f"{item.name}.npz", self.path / item.name / "keypoints.json"):
            if cand.is_file():
                return KeypointSequence.load(cand)
        raise InputError(f"no keypoints for '{item.name}' in {self.path}", hint=f"expected {item.name}.json or {item.name}.npz there")

    def score(self, item: Item, frames: np.ndarray, notes: list[str]):
        from posevid.eval.pose_accuracy import fit_keypoints, pose_accuracy
        from posevid.pose.formats import convert

        seq = self._sequence(item).to_format("coco17")
        T = len(frames)
        idx = self.cfg.pose_start + self.cfg.pose_stride * np.arange(T)
        if idx[-1] >= len(seq):
            raise InputError(
                f"the keypoints have {len(seq)} frames but '{item.name}' needs frame {int(idx[-1])} "
                f"(start {self.cfg.pose_start}, stride {self.cfg.pose_stride})", hint="check --pose-start/--pose-stride",
            )  # fmt: skip
        if len(seq) != T and self.cfg.pose_stride == 1 and self.cfg.pose_start == 0:
            notes.append(f"{T} frames scored against the first {T} of {len(seq)} conditioning frames (see --pose-start/--pose-stride)")
        gt = seq.keypoints[idx, 0]
        h, w = frames.shape[1:3]
        gt, mode = fit_keypoints(gt, (seq.width, seq.height), (w, h), self.cfg.pose_fit)
        self.estimator.reset()
        detections = []
        for frame in progress_bar(frames, desc=f"pose {item.name}", enabled=not hide_inner_bar(not self.cfg.quiet)):  # inside 'eval'
            found = np.asarray(self.estimator(frame), dtype=np.float64)
            if len(found):
                found = convert(found, self.estimator.keypoint_format, "coco17")
            detections.append(found.reshape(-1, 17, 3))
        summary, per_frame = pose_accuracy(gt, detections, ref=self.cfg.pck_ref, threshold=self.cfg.pose_threshold)
        return summary, per_frame, mode


# ----------------------------------------------------------------------------------------------- main
def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Evaluate ``cfg.videos`` and return the report dict (see docs/evaluation.md for its layout)."""
    from posevid.utils.devices import pick_device
    from posevid.utils.outputs import environment_info

    cfg = replace(cfg, device=pick_device(cfg.device), notes=list(cfg.notes))  # evaluate() never mutates the caller's config
    items = collect_items(cfg.videos, what="video")
    pairs = pair_items(items, collect_items(cfg.reference, what="reference")) if cfg.reference else [(i, None) for i in items]
    prompts = {i.name: cfg.prompt or sidecar_settings(i).get("prompt") for i in items}
    metrics = resolve_metrics(cfg, prompts_known=all(prompts.values()))
    if not metrics:
        raise InputError("nothing to evaluate", hint="name metrics with --metrics and pass the inputs they need")
    scorers = _Scorers.load(cfg, metrics, prompts)
    videos = []
    try:
        for gen_item, ref_item in progress_bar(pairs, desc="eval", unit="video", enabled=not cfg.quiet and len(pairs) >= 2, leave=True):
            videos.append(scorers.score_video(gen_item, ref_item))
    finally:
        if scorers.pose is not None:
            scorers.pose.estimator.close()
    aggregate, set_counts = _aggregate(videos, scorers.metrics, scorers.feats, cfg.notes)
    return {
        "kind": "posevid.eval",
        "metrics": scorers.metrics,
        "videos": videos,
        "aggregate": aggregate,
        "set_sizes": set_counts,
        "settings": {**{k: v for k, v in vars(cfg).items() if k != "notes"}, "clip": cfg.clip or D.clip},  # the CLIP used
        "notes": cfg.notes,
        "environment": environment_info(),
    }


@dataclass
class _Scorers:
    """The feature networks, CLIP and the pose scorer one evaluation needs, loaded once, and the set-level features
    (FID/FVD) they collect video by video."""

    cfg: EvalConfig
    metrics: list[str]
    prompts: dict[str, str | None]
    nets: dict[str, Any]
    clip: Any = None
    ref_image_emb: Any = None
    pose: _PoseScorer | None = None
    feats: dict[str, list[np.ndarray]] = field(default_factory=lambda: {"fid_gen": [], "fid_ref": [], "fvd_gen": [], "fvd_ref": []})

    @classmethod
    def load(cls, cfg: EvalConfig, metrics: list[str], prompts: dict[str, str | None]) -> _Scorers:
        scorers = cls(cfg, metrics, prompts, _load_nets(cfg, metrics))
        scorers.clip, scorers.metrics = _load_clip(cfg, metrics)
        if scorers.clip is not None and "clip_image_alignment" in scorers.metrics:
            scorers.ref_image_emb = scorers.clip.embed_images([_read_reference_image(cfg.reference_image)])[0]
        scorers.pose = _PoseScorer(cfg, cfg.notes) if "pose" in scorers.metrics else None
        return scorers

    def score_video(self, gen_item: Item, ref_item: Item | None) -> dict[str, Any]:
        """One video's entry of the report: its metrics (means over frames), per-frame values and notes."""
        vnotes: list[str] = []
        gen, ref = self._frames(gen_item, ref_item, vnotes)
        per_frame: dict[str, list[float]] = {}
        if ref is not None:
            per_frame.update(self._paired(gen, ref, vnotes))
        if self.clip is not None:
            per_frame.update(self._clip(gen_item, gen, vnotes))
        m: dict[str, float] = {key: _mean(series) for key, series in per_frame.items()}
        if self.pose is not None:
            summary, pose_frames, mode = self.pose.score(gen_item, gen, vnotes)
            m.update(summary)
            per_frame.update(pose_frames)
            vnotes.append(f"pose: keypoints mapped to the frame with '{mode}', re-detected with {self.pose.estimator_name}")
        return {
            "name": gen_item.name,
            "path": str(gen_item.path),
            "reference": str(ref_item.path) if ref_item is not None else None,
            "prompt": self.prompts[gen_item.name] if "clip_text_alignment" in self.metrics else None,
            "frames": int(len(gen)),
            "size": [int(gen.shape[2]), int(gen.shape[1])],
            "metrics": m,
            "per_frame": per_frame,
            "notes": vnotes,
        }

    def _frames(self, gen_item: Item, ref_item: Item | None, vnotes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """The generated frames and, for paired metrics, the reference's: cut to a common length, resized to one size."""
        gen = load_frames(gen_item, max_frames=self.cfg.max_frames)
        if ref_item is None or not any(m in PAIRED for m in self.metrics):
            return gen, None
        ref = load_frames(ref_item, max_frames=self.cfg.max_frames)
        if len(ref) != len(gen):
            n = min(len(gen), len(ref))
            vnotes.append(f"{len(gen)} generated vs {len(ref)} reference frames: the first {n} of each are compared")
            gen, ref = gen[:n], ref[:n]
        if ref.shape[1:3] != gen.shape[1:3]:
            vnotes.append(f"reference resized from {ref.shape[2]}x{ref.shape[1]} to {gen.shape[2]}x{gen.shape[1]} (area filter)")
            ref = _resize_to(ref, (gen.shape[2], gen.shape[1]))
        return gen, ref

    def _paired(self, gen: np.ndarray, ref: np.ndarray, vnotes: list[str]) -> dict[str, list[float]]:
        """Per-frame paired metrics; FID/FVD features are collected for the set-level distances."""
        import torch

        cfg, metrics, per_frame = self.cfg, self.metrics, {}
        for name, fn in (("l1", paired.l1_per_frame), ("psnr", paired.psnr_per_frame),
                         ("psnr_uint8_overflow_buggy", paired.psnr_uint8_overflow_buggy), ("ssim", paired.ssim_per_frame)):  # fmt: skip
            if name in metrics:
                per_frame[name] = fn(gen, ref).tolist()
        if "lpips" in metrics:
            a, b = _to_tensor(gen) * 2 - 1, _to_tensor(ref) * 2 - 1
            bs, dev = cfg.batch_size, cfg.device
            with torch.no_grad():
                dist = [self.nets["lpips"](a[i : i + bs].to(dev), b[i : i + bs].to(dev)) for i in range(0, len(a), bs)]
            per_frame["lpips"] = torch.cat(dist).cpu().double().tolist()
        if "fid" in metrics:
            self.feats["fid_gen"].append(_batched(self.nets["fid"], _to_tensor(gen).to(cfg.device), cfg.batch_size))
            self.feats["fid_ref"].append(_batched(self.nets["fid"], _to_tensor(ref).to(cfg.device), cfg.batch_size))
        if "fvd" in metrics:
            for key, frames in (("fvd_gen", gen), ("fvd_ref", ref)):
                clips, padded = fvd_clips(frames, cfg.fvd_clip_length, cfg.fvd_size)
                if padded:
                    vnotes.append(f"FVD: {key[4:]} video padded by {padded} repeated frames to a {cfg.fvd_clip_length}-frame clip")
                self.feats[key].append(_batched(self.nets["fvd"], clips.to(cfg.device), max(1, cfg.batch_size // 8)))
        return per_frame

    def _clip(self, gen_item: Item, gen: np.ndarray, vnotes: list[str]) -> dict[str, list[float]]:
        """Per-frame CLIP consistency and text/image alignment."""
        from posevid.eval.clip import alignment_per_frame, consistency_per_frame

        emb = self.clip.embed_images(gen)
        per_frame = {}
        if "clip_consistency" in self.metrics:
            if len(emb) > 1:
                per_frame["clip_consistency"] = consistency_per_frame(emb).tolist()
            else:
                vnotes.append("clip_consistency needs at least 2 frames")
        if "clip_text_alignment" in self.metrics:
            per_frame["clip_text_alignment"] = alignment_per_frame(emb, self.clip.embed_text(self.prompts[gen_item.name])).tolist()
        if self.ref_image_emb is not None:
            per_frame["clip_image_alignment"] = alignment_per_frame(emb, self.ref_image_emb).tolist()
        return per_frame


def _load_nets(cfg: EvalConfig, metrics: list[str]) -> dict[str, Any]:
    """The feature networks of the learned paired metrics asked for (LPIPS, FID's Inception, FVD's I3D)."""
    nets: dict[str, Any] = {}
    if "lpips" in metrics:
        from posevid.eval.nets import load_lpips

        nets["lpips"] = load_lpips(cfg.lpips_weights, cfg.lpips_backbone).to(cfg.device)
    if "fid" in metrics:
        from posevid.eval.nets import load_inception

        nets["fid"] = load_inception(cfg.inception_weights).to(cfg.device)
    if "fvd" in metrics:
        from posevid.eval.nets import load_i3d

        nets["fvd"] = load_i3d(cfg.i3d_weights).to(cfg.device)
    return nets


def _load_clip(cfg: EvalConfig, metrics: list[str]) -> tuple[Any, list[str]]:
    """CLIP when a CLIP metric is asked for, and the metrics left: with ``all`` and the default CLIP not at hand, the
    CLIP metrics are skipped with a note instead of failing."""
    if not any(m in metrics for m in CLIP_METRICS):
        return None, metrics
    from posevid.eval.clip import ClipScorer

    try:
        return ClipScorer(cfg.clip or D.clip, device=cfg.device, batch_size=cfg.batch_size), metrics
    except PosevidError as exc:
        if cfg.metrics.strip().lower() != "all" or cfg.clip is not None:  # a CLIP the user named must load
            raise
        cfg.notes.append(f"CLIP metrics skipped: {exc}")
        left = [m for m in metrics if m not in CLIP_METRICS]
        if not left:
            raise InputError(
                "nothing left to evaluate without CLIP", hint="pass a CLIP folder with --clip, or --reference for paired metrics"
            ) from None
        return None, left


def _read_reference_image(path: str | None) -> np.ndarray:
    from PIL import Image

    try:
        return np.asarray(Image.open(path).convert("RGB"))
    except Exception as exc:
        raise InputError(f"cannot read --reference-image {path}: {str(exc).splitlines()[0][:120]}") from None


def _aggregate(videos: list[dict], metrics: list[str], feats: dict[str, list[np.ndarray]], notes: list[str]):
    """Means over the videos, and the set-level FID/FVD from the collected features; returns (aggregate, set sizes)."""
    aggregate: dict[str, float] = {}
    for key in dict.fromkeys(k for v in videos for k in v["metrics"]):
        aggregate[key] = _mean(v["metrics"].get(key, float("nan")) for v in videos)
    set_counts: dict[str, int] = {}
    for name, unit in (("fid", "frames"), ("fvd", "clips")):
        if name in metrics:
            gen_f, ref_f = np.concatenate(feats[f"{name}_gen"]), np.concatenate(feats[f"{name}_ref"])
            if min(len(gen_f), len(ref_f)) < 2:
                raise InputError(f"{name.upper()} needs at least 2 {unit} per set, got {len(gen_f)}", hint="evaluate more or longer videos")
            aggregate[name] = frechet_distance_features(gen_f, ref_f)
            set_counts[name] = int(len(gen_f))
            if len(gen_f) < gen_f.shape[1]:
                notes.append(
                    f"{name.upper()} from {len(gen_f)} {unit} with {gen_f.shape[1]}-d features: the covariance is rank-deficient, "
                    "so the value is biased high and only comparable at equal sample counts"
                )
    return aggregate, set_counts
