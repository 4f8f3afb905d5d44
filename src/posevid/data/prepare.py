"""``posevid prepare``: turn raw clips / images / UBC frames into a resumable, validated training folder.

Layout written under ``OUT``::

    OUT/meta.json            kind, source, settings (written first; checked again on resume)
    OUT/manifest.jsonl       one line per finished or skipped item (see :mod:`posevid.data.manifest`)
    OUT/poses/<id>.npz       cached keypoints (posevid.pose KeypointSequence), when poses are extracted
    OUT/skeletons/<id>.mp4   skeleton video rendered in the official FYP style (video kinds)
    OUT/pairs/<id>.png       image and OUT/skeletons/<id>.png skeleton (image-pose kind)
    OUT/frames/<id>/         frame_N.png + frame_N_densepose.npy of a video (ubc kind with --densepose,
                             see :mod:`posevid.data.prepare_densepose`)

Source videos are referenced, not copied (HD-VILA is terabytes). Every unreadable or unusable item is
skipped with its reason logged and recorded in the manifest; when nothing usable remains the command
fails with one line. Rerunning the same command continues where an interrupted run stopped.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from posevid.data.captions import ClipRecord, clip_path, read_captions_csv
from posevid.data.defaults import ENGINES, KINDS, PREPARE_DEFAULTS
from posevid.data.manifest import Manifest, PrepareResult
from posevid.errors import InputError, PosevidError
from posevid.utils.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from posevid.utils.outputs import atomic_path
from posevid.utils.progress import progress_bar

log = logging.getLogger(__name__)



def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "item"


def _write_meta(out: Path, meta: dict[str, Any]) -> None:
    path = out / "meta.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("kind") != meta["kind"]:
            raise InputError(
                f"{out} already holds data of kind {old.get('kind')!r}, not {meta['kind']!r}",
                hint="use another --out folder or the same --kind",
            )
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")


# ------------------------------------------------------------------------------------------------
# pose back end (posevid.pose); imported lazily so data-only preparation needs no mediapipe
# ------------------------------------------------------------------------------------------------
def _pose_api():
    """``(extract_keypoints, extract_keypoints_from_frames, render_sequence, KeypointSequence)`` of posevid.pose."""
    try:
        from posevid.pose.extract import extract_keypoints, extract_keypoints_from_frames
        from posevid.pose.render import render_sequence
        from posevid.pose.sequence import KeypointSequence
    except ImportError as exc:  # pragma: no cover - the package ships posevid.pose
        raise PosevidError(f"pose extraction is unavailable ({exc})", hint="prepare with --no-poses") from None
    return extract_keypoints, extract_keypoints_from_frames, render_sequence, KeypointSequence


def _extract_and_render(video: Path, out: Path, item_id: str, manifest: Manifest, *, workers: int | None = None) -> dict[str, Any]:
    """Keypoints (cached) and an official-style skeleton video for one clip; ``workers`` as in ``extract_keypoints``."""
    from posevid.video import probe_video, write_video

    extract_keypoints, _, render_sequence, KeypointSequence = _pose_api()
    kp_path = out / "poses" / f"{item_id}.npz"
    sk_path = out / "skeletons" / f"{item_id}.mp4"
    kp_path.parent.mkdir(parents=True, exist_ok=True)
    if kp_path.is_file():  # cached by an interrupted earlier run
        seq = KeypointSequence.load(kp_path)
    else:
        seq = extract_keypoints(video, progress=False, workers=workers)
        seq.save(kp_path)  # atomic
    if not sk_path.is_file():
        info = probe_video(video)
        frames = render_sequence(seq, style="fyp", size=(info.width, info.height))
        write_video(sk_path, frames, fps=info.fps or 25.0)
    return {"keypoints": manifest.rel(kp_path), "skeleton": manifest.rel(sk_path)}


# ------------------------------------------------------------------------------------------------
# video clips (Charades / HD-VILA): one work item per CSV clip, run through a list of stages
# ------------------------------------------------------------------------------------------------
# A work item is a plain JSON-able dict: the manifest fields known so far, plus "_path" (the clip file or
# None) and "_reason" (why it is skipped, None while usable). Every stage is a function item -> item that
# does nothing once "_reason" is set. The plain engine runs the stages one item at a time; the Ray engine
# (posevid.data.prepare_ray) runs each stage as a Ray Data operator. Both write the same manifest, through
# Manifest.append_item.
ClipStage = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class StageSpec:
    """A named stage; ``model=True`` marks the stages that run a model (sized with the GPU flags under Ray)."""

    name: str
    fn: ClipStage
    model: bool = False


def _read_path_list(path: Path) -> list[Path]:
    """A text file with one video path per line (blank lines and ``#`` comments ignored; relative to the file)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the list of clips {path}: {exc}", hint="pass a folder or a UTF-8 text file of paths") from None
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line)
            out.append(p if p.is_absolute() else path.parent / p)
    return out


def _listed_clip(listed: list[Path], rec: ClipRecord, kind: str) -> Path | None:
    """The listed file of ``rec``: same name, or same stem when the clip id has no suffix (hdvila: in ``part_<id>``)."""
    has_suffix = Path(rec.clip_id).suffix.lower() in VIDEO_SUFFIXES
    for p in listed:
        named = p.name == rec.clip_id or (not has_suffix and p.stem == rec.clip_id)
        if named and (kind != "hdvila" or f"part_{rec.part_id}" in p.parts) and p.is_file():
            return p
    return None


def clip_items(src: Path, captions: Path, kind: str) -> list[dict[str, Any]]:
    """One work item per clip of the caption CSV, in CSV order; ``src`` is a folder or a text file of paths."""
    records = read_captions_csv(captions, require_part_id=(kind == "hdvila"))
    if not records:
        raise InputError(f"caption CSV {captions} has no rows", hint="add part_id, clip_id, caption rows")
    listed = _read_path_list(src) if src.is_file() else None
    items = []
    for rec in records:
        stem = Path(rec.clip_id).stem if Path(rec.clip_id).suffix.lower() in VIDEO_SUFFIXES else rec.clip_id
        iid = _safe_id(f"{rec.part_id}_{stem}" if kind == "hdvila" else stem)
        path = _listed_clip(listed, rec, kind) if listed is not None else clip_path(src, rec, kind)
        reason = None
        if path is None:
            if listed is not None:
                where = f"no path in {src} names {rec.clip_id}"
            else:
                where = f"{src}/part_{rec.part_id}/video_clips/{rec.clip_id}" if kind == "hdvila" else f"{src}/{rec.clip_id}[.mp4]"
            reason = f"video not found ({where})"
        item = {"id": iid, "clip_id": rec.clip_id, "part_id": rec.part_id, "captions": rec.captions}
        items.append({**item, "_path": str(path) if path is not None else None, "_reason": reason})
    return items


def video_items(src: Path) -> list[dict[str, Any]]:
    """One work item per video of ``src`` (a folder, searched recursively, or a text file of paths), in name order.

    The id is the video's path under ``src`` (its file name for a list), as DreamPose names its frame
    folders (``train-frames/91iZ9x8NI0S.mp4/``).
    """
    if src.is_file():
        listed = _read_path_list(src)
        named = [(p.name, p) for p in listed]
    else:
        files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        named = [(str(p.relative_to(src)), p) for p in files]
    if not named:
        kinds = ", ".join(VIDEO_SUFFIXES)
        raise InputError(f"no videos in {src}", hint=f"--densepose takes a folder of videos ({kinds}) or a text file of their paths")
    items, seen = [], {}
    for name, path in named:
        iid = _safe_id(name)
        if iid in seen:
            raise InputError(f"two videos get the id {iid}: {seen[iid]} and {path}", hint="rename one of them")
        seen[iid] = path
        reason = None if path.is_file() else f"video not found ({path})"
        items.append({"id": iid, "clip_id": name, "_path": str(path), "_reason": reason})
    return items


def stage_captions(item: dict[str, Any]) -> dict[str, Any]:
    """Captions come from the CSV; a clip without one is skipped (an automatic captioner would plug in here)."""
    if item["_reason"] is None and not item["captions"]:
        item["_reason"] = "no caption in the CSV"
    return item


def _check_video(path: Path) -> dict[str, Any]:
    """Probe a clip and decode its first frame; raises InputError when it is unreadable."""
    from posevid.video import iter_frames, probe_video

    info = probe_video(path)
    next(iter(iter_frames(path, max_frames=1)))
    return {"num_frames": info.num_frames, "fps": info.fps, "width": info.width, "height": info.height}


def stage_decode(item: dict[str, Any], *, min_frames: int) -> dict[str, Any]:
    """Probe the clip and decode its first frame; unreadable or too short clips are skipped."""
    if item["_reason"] is not None:
        return item
    try:
        item.update(_check_video(Path(item["_path"])))
    except PosevidError as exc:
        item["_reason"] = f"unreadable video: {exc}"
    else:
        if item["num_frames"] < min_frames:
            item["_reason"] = f"only {item['num_frames']} frame(s), fewer than --min-frames {min_frames}"
    return item


def stage_pose(item: dict[str, Any], *, out: Path, workers: int | None = None) -> dict[str, Any]:
    """Keypoints + skeleton video (files written atomically, reused when an earlier run left them)."""
    if item["_reason"] is not None:
        return item
    try:
        item.update(_extract_and_render(Path(item["_path"]), out, item["id"], Manifest(out), workers=workers))
    except PosevidError as exc:
        item["_reason"] = f"pose extraction failed: {exc}"
    return item


def clip_stages(
    out: Path, *, poses: bool, min_frames: int, pose_workers: int | None = None, extra: Sequence[StageSpec] = (), captions: bool = True
) -> list[StageSpec]:
    """The stages of one clip, in order. ``extra`` stages run after pose extraction (the DensePose stage goes here).
    ``captions=False`` for videos without a caption CSV (DreamPose data)."""
    stages = [StageSpec("captions", stage_captions)] if captions else []
    stages.append(StageSpec("decode", functools.partial(stage_decode, min_frames=min_frames)))
    if poses:
        stages.append(StageSpec("pose", functools.partial(stage_pose, out=out, workers=pose_workers), model=True))
    return stages + list(extra)


def _prepare_clips(items: list[dict[str, Any]], stages: list[StageSpec], out: Path, *, progress: bool) -> PrepareResult:
    manifest = Manifest(out)
    manifest.repair()
    done = manifest.done_ids()
    reused = 0
    for item in progress_bar(items, desc="prepare", unit="item", enabled=progress, leave=True):
        if item["id"] in done:
            reused += 1
            continue
        for stage in stages:
            item = stage.fn(item)
        manifest.append_item(item)
    return manifest.result(reused)


# ------------------------------------------------------------------------------------------------
# image-pose pairs (FYP stage 1)
# ------------------------------------------------------------------------------------------------
def _image_captions(captions: Path | None) -> dict[str, str]:
    if captions is None:
        return {}
    table: dict[str, str] = {}
    for rec in read_captions_csv(captions):
        if rec.captions:
            table[rec.clip_id] = rec.captions[0]
            table.setdefault(Path(rec.clip_id).stem, rec.captions[0])
    return table


def _iter_image_sources(src: Path, frames_per_video: int) -> Iterable[tuple[str, Path, Callable[[], np.ndarray]]]:
    """``(id, source file, load)`` for every image, and ``frames_per_video`` evenly spaced frames per video."""
    from posevid.video import probe_video, read_frames

    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
    for path in files:
        rel = _safe_id(str(path.relative_to(src).with_suffix("")))
        if path.suffix.lower() in IMAGE_SUFFIXES:
            yield rel, path, lambda p=path: _read_image(p)
            continue
        try:
            n = probe_video(path).num_frames
        except PosevidError as exc:
            yield rel, path, lambda exc=exc: (_ for _ in ()).throw(exc)
            continue
        picks = sorted({int(round(x)) for x in np.linspace(0, max(n - 1, 0), num=max(1, frames_per_video))})
        for idx in picks:
            yield f"{rel}_f{idx}", path, lambda p=path, i=idx: read_frames(p, indices=[i])[0]


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read image {path}: {exc}", hint="the file is corrupt or not an image") from None


def _write_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")


def _prepare_image_pose(src: Path, captions: Path | None, out: Path, *, frames_per_video: int, progress: bool) -> PrepareResult:
    _, extract_from_frames, render_sequence, _ = _pose_api()
    table = _image_captions(captions)
    manifest = Manifest(out)
    manifest.repair()
    done = manifest.done_ids()
    ok = reused = skipped = 0
    sources = list(_iter_image_sources(src, frames_per_video))
    for iid, path, load in progress_bar(sources, desc="prepare", unit="item", enabled=progress, leave=True):
        if iid in done:
            reused += 1
            continue
        reason = None
        try:
            image = load()
            h, w = image.shape[:2]
            seq = extract_from_frames([image], w, h, smoothing=False, source=str(path))
        except PosevidError as exc:
            reason = str(exc)
        if reason is not None:
            log.warning("prepare: skipping %s: %s", iid, reason)
            manifest.append({"id": iid, "status": "skipped", "reason": reason, "source": str(path)})
            skipped += 1
            continue
        skeleton = np.asarray(next(iter(render_sequence(seq, style="fyp", size=(w, h)))))
        img_path, sk_path, kp_path = out / "pairs" / f"{iid}.png", out / "skeletons" / f"{iid}.png", out / "poses" / f"{iid}.npz"
        _write_png(img_path, image)
        _write_png(sk_path, skeleton)
        kp_path.parent.mkdir(parents=True, exist_ok=True)
        seq.save(kp_path)
        caption = table.get(path.name) or table.get(path.stem) or table.get(iid, "")
        manifest.append(
            {
                "id": iid,
                "status": "ok",
                "image": manifest.rel(img_path),
                "skeleton": manifest.rel(sk_path),
                "keypoints": manifest.rel(kp_path),
                "caption": caption,
                "source": str(path),
                "width": w,
                "height": h,
            }
        )
        ok += 1
    return manifest.result(reused)


# ------------------------------------------------------------------------------------------------
# UBC-Fashion-style frames with DensePose (DreamPose)
# ------------------------------------------------------------------------------------------------
_FRAME_RE = re.compile(r"^frame_(\d+)\.png$")


def _check_densepose(path: Path, image_size: tuple[int, int]) -> str | None:
    try:
        uv = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError/... for damaged files
        return f"unreadable DensePose file {path.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if uv.ndim != 3 or uv.shape[0] != 2:
        return f"DensePose {path.name} has shape {tuple(uv.shape)}, expected (2, H, W)"
    if not np.isfinite(uv).all():
        return f"DensePose {path.name} holds NaN/inf"
    return None


def _prepare_ubc(src: Path, out: Path, *, progress: bool) -> PrepareResult:
    from PIL import Image

    manifest = Manifest(out)
    manifest.repair()
    done = manifest.done_ids()
    ok = reused = skipped = 0
    frames = sorted(
        (p for p in src.rglob("frame_*.png") if _FRAME_RE.match(p.name)), key=lambda p: (str(p.parent), int(_FRAME_RE.match(p.name)[1]))
    )
    for path in progress_bar(frames, desc="prepare", unit="item", enabled=progress, leave=True):
        group = str(path.parent.relative_to(src)) if path.parent != src else "."
        iid = _safe_id(f"{group}/{path.stem}" if group != "." else path.stem)
        if iid in done:
            reused += 1
            continue
        dp = path.with_name(f"{path.stem}_densepose.npy")
        reason = None
        size = (0, 0)
        try:
            with Image.open(path) as im:
                im.verify()
            with Image.open(path) as im:
                size = im.size
        except Exception as exc:
            reason = f"unreadable image: {type(exc).__name__}"
        if reason is None:
            reason = f"no DensePose file {dp.name}" if not dp.is_file() else _check_densepose(dp, size)
        if reason is not None:
            log.warning("prepare: skipping %s: %s", path, reason)
            manifest.append({"id": iid, "status": "skipped", "reason": reason, "image": str(path)})
            skipped += 1
            continue
        manifest.append(
            {
                "id": iid,
                "status": "ok",
                "group": group,
                "frame": int(_FRAME_RE.match(path.name)[1]),
                "image": manifest.rel(path),
                "densepose": manifest.rel(dp),
                "width": size[0],
                "height": size[1],
            }
        )
        ok += 1
    return manifest.result(reused)


VIDEO_KINDS = ("charades", "hdvila")


def prepare_dataset(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    kind: str = PREPARE_DEFAULTS.kind,
    captions: str | os.PathLike | None = None,
    poses: bool | None = PREPARE_DEFAULTS.poses,
    min_frames: int = PREPARE_DEFAULTS.min_frames,
    frames_per_video: int = PREPARE_DEFAULTS.frames_per_video,
    progress: bool = True,
    pose_workers: int | None = PREPARE_DEFAULTS.pose_workers,
    engine: str = PREPARE_DEFAULTS.engine,
    ray: Any = None,
    extra_stages: Sequence[StageSpec] = (),
    densepose: Any = None,
) -> PrepareResult:
    """Prepare ``src`` into ``out`` (resumable). ``poses=None`` means: extract for image-pose only.

    ``engine="ray"`` runs the clip stages (video kinds) as Ray Data operators, sized by ``ray``
    (a :class:`posevid.data.prepare_ray.RaySettings`); the manifest is the same as the plain engine's.
    ``extra_stages`` run after pose extraction on every clip (``densepose`` adds its stage there).
    ``pose_workers`` is ``extract_keypoints``' ``workers`` (plain engine; Ray runs one process per clip).
    ``densepose`` (``kind="ubc"``): ``SRC`` holds videos, and DensePose runs on their frames with these options, a
    :class:`~posevid.densepose.options.DensePoseOptions` or a mapping of some of its fields (``weights``, ``device``,
    ``dtype``, ``batch_size``, ``person``, ``short_side``; ``{}`` for the defaults), see :mod:`posevid.data.prepare_densepose`.
    """
    src, out = Path(src), Path(out)
    if kind not in KINDS:
        raise InputError(f"unknown --kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
    if engine not in ENGINES:
        raise InputError(f"unknown --engine {engine!r}", hint=f"use one of {', '.join(ENGINES)}")
    from_videos = kind in VIDEO_KINDS or densepose is not None  # work items are videos run through the clip stages
    if densepose is not None and kind != "ubc":
        raise InputError(f"--densepose makes DreamPose data, --kind ubc, not --kind {kind}", hint="add --kind ubc")
    if engine == "ray" and not from_videos:
        raise InputError(
            f"--engine ray prepares video clips only, not --kind {kind}",
            hint="use --kind charades/hdvila, --kind ubc --densepose, or --engine plain",
        )
    if from_videos and src.is_file():
        pass  # a text file listing the clips
    elif not src.is_dir():
        raise InputError(
            f"source folder not found: {src}",
            hint="pass the folder that holds the clips / images / frames (video kinds and --densepose: or a text file of clip paths)",
        )
    if kind in VIDEO_KINDS and captions is None:
        raise InputError(f"--captions is required for --kind {kind}", hint="pass a CSV with part_id, clip_id, caption")
    if (extra_stages or pose_workers is not None) and not from_videos:
        raise InputError(f"extra stages and pose workers apply to video kinds, not --kind {kind}")
    if engine == "ray":
        from posevid.data.prepare_ray import require_ray

        require_ray()  # before anything is written
    if densepose is not None:
        from posevid.data.prepare_densepose import DensePoseStage, check_densepose_options

        items = video_items(src)  # input and weights errors before anything is written
        densepose = check_densepose_options(densepose, load=engine == "plain")
        extra_stages = [*extra_stages, StageSpec("densepose", DensePoseStage(out, densepose), model=True)]
    if poses is None:
        poses = kind == "image-pose"
    settings = {
        "kind": kind,
        "source": str(src.resolve()),
        "captions": str(captions) if captions else None,
        "poses": bool(poses),
        "min_frames": min_frames,
        "frames_per_video": frames_per_video,
    }
    if densepose is not None:
        settings["densepose"] = densepose.as_dict()
    _write_meta(out, settings)
    if from_videos:
        if kind in VIDEO_KINDS:
            items = clip_items(src, Path(captions), kind)  # (--densepose: the videos, listed above)
        has_captions = kind in VIDEO_KINDS
        if engine == "ray":
            from posevid.data.prepare_ray import prepare_clips_ray

            stages = clip_stages(out, poses=bool(poses), min_frames=min_frames, pose_workers=1, extra=extra_stages, captions=has_captions)
            result = prepare_clips_ray(items, stages, out, settings=ray, progress=progress)
        else:
            stages = clip_stages(
                out, poses=bool(poses), min_frames=min_frames, pose_workers=pose_workers, extra=extra_stages, captions=has_captions
            )
            result = _prepare_clips(items, stages, out, progress=progress)
    elif kind == "image-pose":
        result = _prepare_image_pose(src, Path(captions) if captions else None, out, frames_per_video=frames_per_video, progress=progress)
    else:
        result = _prepare_ubc(src, out, progress=progress)
    if result.ok == 0:
        raise InputError(
            f"nothing usable in {src} for --kind {kind} ({result.skipped} item(s) skipped; reasons in {out / 'manifest.jsonl'})",
            hint="check the paths in the caption CSV and the --kind layout",
        )
    return result
